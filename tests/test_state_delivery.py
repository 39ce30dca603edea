"""The state store's delivery records: releases, rollouts, what is live, promotions and their
decisions, validations; and migration 0004 from a 0003 store."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from envplane.errors import BadInput, InvalidName
from envplane.state import migrate
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    raw_rows,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

DIGEST = "ab" * 32
OP_A = "op-20261201-0915-aaaaaa"
OP_B = "op-20261201-0916-bbbbbb"
OP_C = "op-20261201-0917-cccccc"


def _release(store: StateStore, **services: str) -> str:
    return store.create_release(services or {"api": "1.0.0"}, config_digest=DIGEST).id


# Releases --------------------------------------------------------------------------------


def test_release_round_trip(store: StateStore) -> None:
    rel = store.create_release(
        {"api": "1.4.2", "web": "2.0.0"},
        config_digest=DIGEST,
        note="first cut",
        source_env="staging",
    )
    assert re.fullmatch(r"rel-\d{8}-\d{6}-[0-9a-f]{6}", rel.id)
    assert rel.created_by == store.actor and rel.created_at.tzinfo == UTC
    got = store.get_release(rel.id)
    assert got == rel
    assert got.services == {"api": "1.4.2", "web": "2.0.0"}
    assert (got.note, got.source_env, got.config_digest) == ("first cut", "staging", DIGEST)
    assert store.get_release("rel-20261201-091500-000000") is None


def test_releases_are_newest_first_and_limited(store: StateStore) -> None:
    ids = [_release(store, api=f"1.0.{n}") for n in range(3)]
    assert [r.id for r in store.releases()] == ids[::-1]
    assert [r.services["api"] for r in store.releases(limit=2)] == ["1.0.2", "1.0.1"]


def test_a_changed_record_does_not_change_the_store(store: StateStore) -> None:
    rel = store.create_release({"api": "1.0.0"}, config_digest=DIGEST)
    rel.services["api"] = "9.9.9"
    assert store.get_release(rel.id).services == {"api": "1.0.0"}  # type: ignore[union-attr]


# Rollouts --------------------------------------------------------------------------------


def test_rollout_round_trip_and_detail_merge(store: StateStore) -> None:
    old, new = _release(store), _release(store, api="2.0.0")
    started = store.start_rollout(
        OP_A,
        "prod-one",
        new,
        kind="deploy",
        strategy="blue-green",
        previous_release_id=old,
        detail={"backup": "bk-1"},
    )
    assert (started.status, started.kind, started.finished_at) == ("running", "deploy", None)
    assert (started.actor, started.previous_release_id) == (store.actor, old)
    assert store.active_rollout("prod-one") == started

    store.update_rollout(OP_A, phase="switch", detail={"downtime_s": 0.0})
    paused = store.update_rollout(OP_A, status="paused", detail={"backup": "bk-2", "step": 2})
    assert paused.phase == "switch"  # not given: unchanged
    assert paused.detail == {"backup": "bk-2", "downtime_s": 0.0, "step": 2}
    assert store.active_rollout("prod-one") == paused

    done = store.update_rollout(OP_A, status="succeeded", finished=True)
    assert done.finished_at is not None and done.finished_at.tzinfo == UTC
    assert store.get_rollout(OP_A) == done
    assert store.active_rollout("prod-one") is None
    assert store.get_rollout(OP_B) is None


def test_rollouts_newest_first_filtered_and_the_active_one(store: StateStore) -> None:
    rel = _release(store)
    for op_id, env in ((OP_A, "prod-one"), (OP_B, "dev-one"), (OP_C, "prod-one")):
        store.start_rollout(
            op_id, env, rel, kind="deploy", strategy="rolling", previous_release_id=None
        )
    assert [r.id for r in store.rollouts()] == [OP_C, OP_B, OP_A]
    assert [r.id for r in store.rollouts("prod-one")] == [OP_C, OP_A]
    assert [r.id for r in store.rollouts(limit=1)] == [OP_C]
    assert store.active_rollout("prod-one").id == OP_C  # type: ignore[union-attr]
    store.update_rollout(OP_C, status="rolled_back", finished=True)
    assert store.active_rollout("prod-one").id == OP_A  # type: ignore[union-attr]
    assert store.active_rollout("qa-one") is None


def test_rollout_refusals(store: StateStore) -> None:
    rel = _release(store)
    with pytest.raises(BadInput, match="no release"):
        store.start_rollout(
            OP_A,
            "prod-one",
            "rel-20261201-091500-000000",
            kind="deploy",
            strategy="rolling",
            previous_release_id=None,
        )
    with pytest.raises(BadInput, match="invalid rollout kind"):
        store.start_rollout(
            OP_A,
            "prod-one",
            rel,
            kind="redeploy",  # type: ignore[arg-type]
            strategy="rolling",
            previous_release_id=None,
        )
    store.start_rollout(
        OP_A, "prod-one", rel, kind="rollback", strategy="recreate", previous_release_id=None
    )
    with pytest.raises(BadInput, match="invalid rollout status"):
        store.update_rollout(OP_A, status="done")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="rollout phase"):
        store.update_rollout(OP_A, phase="x" * 33)
    with pytest.raises(BadInput, match="no rollout"):
        store.update_rollout(OP_B, status="failed")


# What is live ----------------------------------------------------------------------------


def test_live_is_upserted_retained_and_cleared(store: StateStore) -> None:
    first, second = _release(store), _release(store, api="2.0.0")
    assert store.get_live("prod-one") is None
    live = store.set_live(
        "prod-one",
        release_id=first,
        services={"api": {"version": "1.0.0", "color": "blue"}},
        rollout_id=OP_A,
    )
    assert (live.release_id, live.retained, live.previous_release_id) == (first, {}, None)
    assert store.get_live("prod-one") == live

    again = store.set_live(
        "prod-one",
        release_id=second,
        services={"api": {"version": "2.0.0", "color": "green"}},
        rollout_id=OP_B,
        retained={"api": {"color": "blue", "version": "1.0.0", "until": "2026-12-01T10:00:00Z"}},
        previous_release_id=first,
    )
    assert again.since >= live.since and again.since.tzinfo == UTC
    got = store.get_live("prod-one")
    assert got == again
    assert got.services == {"api": {"version": "2.0.0", "color": "green"}}
    assert (got.rollout_id, got.previous_release_id) == (OP_B, first)
    assert got.retained["api"]["color"] == "blue"

    assert store.set_retained("prod-one", {}).retained == {}
    assert store.get_live("prod-one").retained == {}  # type: ignore[union-attr]
    assert store.get_live("prod-one").release_id == second  # type: ignore[union-attr]

    store.clear_live("prod-one")
    assert store.get_live("prod-one") is None
    store.clear_live("prod-one")  # nothing to clear is fine
    with pytest.raises(BadInput, match="nothing is live"):
        store.set_retained("prod-one", {})


def test_live_refuses_a_color_that_is_not_blue_or_green(store: StateStore) -> None:
    with pytest.raises(BadInput, match="color"):
        store.set_live(
            "prod-one",
            release_id=None,
            services={"api": {"version": "1", "color": "red"}},
            rollout_id=None,
        )


# Validations -----------------------------------------------------------------------------


def test_validations_round_trip_newest_first(store: StateStore) -> None:
    rel = _release(store)
    first = store.record_validation(
        "prod-one", level="smoke", passed=True, release_id=rel, summary={"checks": 3}
    )
    store.record_validation("dev-one", level="full", passed=False, release_id=None, summary={})
    last = store.record_validation(
        "prod-one", level="full", passed=False, release_id=None, summary={"failed": ["db"]}
    )
    assert (first.passed, first.release_id, first.actor) == (True, rel, store.actor)
    assert store.validations("prod-one") == [last, first]
    assert store.validations("prod-one", limit=1) == [last]
    assert last.summary == {"failed": ["db"]} and last.passed is False


# Promotions ------------------------------------------------------------------------------


def test_promotion_round_trip_and_decisions(store_url: str, home: Path, store: StateStore) -> None:
    rel = _release(store)
    prm = store.create_promotion(rel, "prod-one", from_env="staging", approvals_needed=2)
    assert re.fullmatch(r"prm-\d{8}-\d{6}-[0-9a-f]{6}", prm.id)
    assert (prm.status, prm.requested_by, prm.decisions, prm.rollout_id) == (
        "pending",
        store.actor,
        (),
        None,
    )
    assert store.get_promotion(prm.id) == prm

    with StateStore.open(store_url, home, actor="alice") as alice:
        after = alice.add_decision(prm.id, "approve", "looks good")
        assert [(d.actor, d.decision, d.message) for d in after.decisions] == [
            ("alice", "approve", "looks good")
        ]
        assert after.status == "pending"  # the store does not decide; the delivery layer does
        with pytest.raises(BadInput, match="already decided"):
            alice.add_decision(prm.id, "reject")
    with StateStore.open(store_url, home, actor="bob") as bob:
        bob.add_decision(prm.id, "reject")
    got = store.get_promotion(prm.id)
    assert [(d.actor, d.decision) for d in got.decisions] == [  # type: ignore[union-attr]
        ("alice", "approve"),
        ("bob", "reject"),
    ]
    assert all(d.at.tzinfo == UTC for d in got.decisions)  # type: ignore[union-attr]

    deployed = store.set_promotion_status(prm.id, "deployed", rollout_id=OP_A)
    assert (deployed.status, deployed.rollout_id, len(deployed.decisions)) == ("deployed", OP_A, 2)
    assert store.set_promotion_status(prm.id, "failed").rollout_id == OP_A  # not given: kept


def test_promotions_newest_first_and_filtered(store: StateStore) -> None:
    rel = _release(store)
    one = store.create_promotion(rel, "prod-one", from_env=None, approvals_needed=0)
    two = store.create_promotion(rel, "qa-one", from_env="dev-one", approvals_needed=1)
    three = store.create_promotion(rel, "prod-one", from_env=None, approvals_needed=1, message="m")
    store.set_promotion_status(one.id, "approved")
    assert [p.id for p in store.promotions()] == [three.id, two.id, one.id]
    assert [p.id for p in store.promotions("prod-one")] == [three.id, one.id]
    assert [p.id for p in store.promotions(status="pending")] == [three.id, two.id]
    assert [p.id for p in store.promotions("prod-one", status="approved")] == [one.id]
    assert [p.id for p in store.promotions(limit=1)] == [three.id]
    assert store.promotions()[0].message == "m"


def test_promotion_refusals(store: StateStore) -> None:
    rel = _release(store)
    with pytest.raises(BadInput, match="no release"):
        store.create_promotion(
            "rel-20261201-091500-000000", "prod-one", from_env=None, approvals_needed=1
        )
    with pytest.raises(BadInput, match="approvals"):
        store.create_promotion(rel, "prod-one", from_env=None, approvals_needed=-1)
    with pytest.raises(BadInput, match="no promotion"):
        store.add_decision("prm-20261201-091500-000000", "approve")
    prm = store.create_promotion(rel, "prod-one", from_env=None, approvals_needed=1)
    with pytest.raises(BadInput, match="invalid decision"):
        store.add_decision(prm.id, "maybe")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="invalid promotion status"):
        store.set_promotion_status(prm.id, "done")  # type: ignore[arg-type]


# Bad ids and names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.get_release("rel-1"), "invalid release id"),
        (lambda s: s.get_release("../etc/passwd"), "invalid release id"),
        (lambda s: s.get_promotion("prm-20261201-0915-ab12cd"), "invalid promotion id"),
        (lambda s: s.add_decision("rel-20261201-091500-ab12cd", "approve"), "invalid promotion id"),
        (lambda s: s.set_promotion_status("x", "approved"), "invalid promotion id"),
        (lambda s: s.get_rollout("rollout-1"), "invalid rollout id"),
        (lambda s: s.update_rollout("op-1", status="failed"), "invalid rollout id"),
        (
            lambda s: s.start_rollout(
                "op-x",
                "prod-one",
                "rel-20261201-091500-ab12cd",
                kind="deploy",
                strategy="rolling",
                previous_release_id=None,
            ),
            "invalid rollout id",
        ),
        (
            lambda s: s.start_rollout(
                OP_A,
                "prod-one",
                "rel-x",
                kind="deploy",
                strategy="rolling",
                previous_release_id=None,
            ),
            "invalid release id",
        ),
        (
            lambda s: s.set_live("prod-one", release_id="r", services={}, rollout_id=None),
            "invalid release id",
        ),
        (
            lambda s: s.record_validation(
                "prod-one", level="smoke", passed=True, release_id="v1", summary={}
            ),
            "invalid release id",
        ),
        (
            lambda s: s.create_promotion("rel-1", "prod-one", from_env=None, approvals_needed=1),
            "invalid release id",
        ),
        (lambda s: s.create_release({"api": "1"}, config_digest="x" * 65), "config digest"),
    ],
)
def test_bad_ids_are_refused(store: StateStore, call: object, match: str) -> None:
    with pytest.raises(BadInput, match=match) as caught:
        call(store)  # type: ignore[operator]
    if "id" in match:
        assert caught.value.hint


def test_bad_id_hint_says_what_an_id_looks_like(store: StateStore) -> None:
    with pytest.raises(BadInput) as caught:
        store.get_release("nope")
    assert "rel-20261201-091500-ab12cd" in (caught.value.hint or "")
    assert "envplane release create" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_live("Prod"),
        lambda s: s.rollouts("a"),
        lambda s: s.validations("../x"),
        lambda s: s.create_release({"Bad Name": "1"}, config_digest=DIGEST),
        lambda s: s.create_release({"api": "1"}, config_digest=DIGEST, source_env="-x-"),
    ],
)
def test_bad_names_are_refused(store: StateStore, call: object) -> None:
    with pytest.raises(InvalidName):
        call(store)  # type: ignore[operator]


# Migration 0004 --------------------------------------------------------------------------


def _upgrade_raw(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    if url.startswith("sqlite:///"):  # StateStore.open makes the directory; Alembic does not
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
            config.set_main_option("path_separator", "os")
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


OLD_ROWS = (
    "INSERT INTO environments (name, target, status, ports, created_at, updated_at) "
    "VALUES ('old-env', 'local', 'ready', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO operations (id, env, kind, status, actor, pid, host, plan, started_at) "
    f"VALUES ('{OP_A}', 'old-env', 'create', 'succeeded', 'ann', 1, 'h', '[]', "
    "'2026-01-01 00:00:00')",
    "INSERT INTO steps (operation_id, step_index, resource_key, action, status, detail, "
    f"started_at) VALUES ('{OP_A}', 0, 'service/api', 'copy', 'done', 'ok', "
    "'2026-01-01 00:00:00')",
)


def test_a_0003_store_migrates_keeps_its_rows_and_takes_delivery_steps(
    store_url: str, home: Path, secret_key: str
) -> None:
    _upgrade_raw(store_url, "0003")
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            for statement in OLD_ROWS:
                conn.execute(sa.text(statement))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # 0003 refuses it
            conn.execute(sa.text(OLD_ROWS[2].replace("0, ", "1, ").replace("'copy'", "'route'")))
    finally:
        engine.dispose()

    with StateStore.open(store_url, home) as store:
        assert raw_rows(store_url, "SELECT version_num FROM alembic_version") == [(migrate.HEAD,)]
        env = store.get_environment("old-env")
        assert env is not None and env.status == "ready"
        op = store.get_operation(OP_A)
        assert op is not None and op.actor == "ann"
        assert [(s.resource_key, s.action, s.detail) for s in op.steps] == [
            ("service/api", "copy", "ok")
        ]
        assert store.releases() == [] and store.get_live("old-env") is None

        new = store.start_operation("old-env", "deploy", {})
        for index, action in enumerate(("route", "analyze", "migrate", "wait")):
            store.start_step(new.id, index, f"service/api-{index}", action)  # type: ignore[arg-type]
            store.finish_step(new.id, index, "done")
        got = store.get_operation(new.id)
        assert [s.action for s in got.steps] == ["route", "analyze", "migrate", "wait"]  # type: ignore[union-attr]
        with pytest.raises(BadInput, match="invalid step action"):
            store.start_step(new.id, 9, "service/api", "teleport")  # type: ignore[arg-type]
