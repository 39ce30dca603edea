"""The state store: schema migrations, opening, environments, resources, audit."""

from __future__ import annotations

import stat
import time
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from envplane.errors import BadInput, EnvplaneError, InvalidName
from envplane.state import migrate
from envplane.state.models import Base
from envplane.state.store import StateStore
from tests.pgserver import free_port, fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    child,
    finish,
    first_line,
    home_fixture,
    raw_execute,
    raw_rows,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

TABLES = {"environments", "resources", "operations", "steps", "locks", "secrets", "audit"}


# Schema and opening ----------------------------------------------------------------------


def test_open_migrates_an_empty_database_to_head(store_url: str, home: Path) -> None:
    with StateStore.open(store_url, home):
        pass
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                migrate.HEAD
            )
    finally:
        engine.dispose()


def test_head_constant_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD


def test_migrated_schema_matches_the_models(store_url: str, home: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    StateStore.open(store_url, home).close()
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_reopen_does_not_migrate_and_keeps_data(
    store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateStore.open(store_url, home) as first:
        first.save_environment("dev-one", target="local")

    def no_upgrade(*_args: object) -> None:
        raise AssertionError("reopening an up-to-date store must not migrate")

    monkeypatch.setattr(migrate, "_upgrade", no_upgrade)
    with StateStore.open(store_url, home) as again:
        env = again.get_environment("dev-one")
    assert env is not None and env.target == "local"


def test_concurrent_first_opens_all_succeed(store_url: str, home: Path) -> None:
    procs = [child(store_url, home, "open") for _ in range(2)]
    assert [first_line(p) for p in procs] == ["opened"] * 2
    assert [finish(p) for p in procs] == [0, 0]


def test_open_of_an_existing_sqlite_store_is_fast(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore.open(url, tmp_path).close()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        StateStore.open(url, tmp_path).close()
        times.append(time.perf_counter() - started)
    median = sorted(times)[len(times) // 2]
    print(f"StateStore.open on an existing SQLite db: median {median * 1000:.2f} ms")
    assert median < 0.05


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "state.db"
    StateStore.open(f"sqlite:///{db}", tmp_path / "home").close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert raw_rows(f"sqlite:///{db}", "PRAGMA journal_mode") == [("wal",)]
    assert (tmp_path / "home").is_dir()


def test_database_from_a_newer_envplane_is_refused(store_url: str, home: Path) -> None:
    StateStore.open(store_url, home).close()
    raw_execute(store_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(EnvplaneError, match="revision '9999'") as caught:
        StateStore.open(store_url, home)
    assert caught.value.hint and "upgrade envplane" in caught.value.hint


@pytest.mark.parametrize(
    "url",
    ["mysql://u:p@localhost/db", "not a url", "sqlite://", "sqlite:///:memory:"],
)
def test_unusable_urls_are_bad_input(url: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput) as caught:
        StateStore.open(url, tmp_path)
    assert caught.value.hint and "sqlite:////" in caught.value.hint


def test_unreachable_postgres_names_the_url_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:{free_port()}/state"
    with pytest.raises(EnvplaneError) as caught:
        StateStore.open(url, tmp_path)
    assert "127.0.0.1" in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)
    assert caught.value.hint and "ENVPLANE_DATABASE_URL" in caught.value.hint


# Environments ------------------------------------------------------------------------------


def test_save_environment_inserts_then_changes_only_given_fields(store: StateStore) -> None:
    created = store.save_environment(
        "dev-one", target="local", template="web", ports={"postgres": 5433}
    )
    assert (created.status, created.template, dict(created.ports)) == (
        "planned",
        "web",
        {"postgres": 5433},
    )
    assert created.created_at.tzinfo == UTC
    updated = store.save_environment("dev-one", status="ready")
    assert (updated.target, updated.template, dict(updated.ports)) == (
        "local",
        "web",
        {"postgres": 5433},
    )
    assert updated.status == "ready"
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    store.save_environment("dev-one", ports={"redis": 6380})
    assert store.get_environment("dev-one") == store.save_environment("dev-one")
    assert dict(store.get_environment("dev-one").ports) == {"redis": 6380}  # type: ignore[union-attr]


def test_first_save_needs_a_target(store: StateStore) -> None:
    with pytest.raises(BadInput, match="needs a target"):
        store.save_environment("dev-one", status="ready")
    assert store.get_environment("dev-one") is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "Dev_One"}, InvalidName, "invalid environment name"),
        ({"name": "ab"}, InvalidName, "invalid environment name"),
        ({"status": "sleeping"}, BadInput, "invalid environment status 'sleeping'"),
        ({"ports": {"postgres": 70000}}, BadInput, "port 'postgres' = 70000"),
        ({"ports": {"postgres": "5432"}}, BadInput, "is not a TCP port"),
    ],
)
def test_save_environment_rejects_bad_input(
    store: StateStore, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    fields = dict(kwargs)  # parametrize shares the dict between backends
    name = str(fields.pop("name", "dev-one"))
    with pytest.raises(error, match=message):
        store.save_environment(name, target="local", **fields)  # type: ignore[arg-type]
    assert store.list_environments(include_destroyed=True) == []


def test_destroyed_environment_keeps_its_history(store: StateStore) -> None:
    store.save_environment("preview-7", target="local")
    op = store.start_operation("preview-7", "destroy", {"steps": []})
    store.finish_operation(op.id, "succeeded")
    store.audit("preview-7", "destroy", "by test")
    store.save_environment("preview-7", status="destroyed")
    store.save_environment("dev-one", target="local", status="ready")

    assert [e.name for e in store.list_environments()] == ["dev-one"]
    gone = store.get_environment("preview-7")
    assert gone is not None and gone.status == "destroyed" and gone.destroyed_at is not None
    assert gone.last_operation_id == op.id
    assert [e.name for e in store.list_environments(include_destroyed=True)] == [
        "dev-one",
        "preview-7",
    ]
    assert [o.id for o in store.operations("preview-7")] == [op.id]
    assert [a.action for a in store.audit_log("preview-7")] == ["destroy"]

    again = store.save_environment("preview-7", status="creating")
    assert again.destroyed_at is None and again.created_at > gone.created_at
    assert [o.id for o in store.operations("preview-7")] == [op.id]


# Resources and audit -------------------------------------------------------------------------


def test_resources_are_recorded_updated_and_forgotten(store: StateStore) -> None:
    store.record_resource("dev-one", "postgres/pg", "postgres", "d1", {"port": 5433})
    store.record_resource("dev-one", "service/web", "service", "d2", {"replicas": 1})
    store.record_resource("dev-one", "postgres/pg", "postgres", "d3", {"port": 5434})
    store.record_resource("dev-two", "service/web", "service", "d9", {})
    got = store.resources("dev-one")
    assert sorted(got) == ["postgres/pg", "service/web"]
    assert (got["postgres/pg"].digest, dict(got["postgres/pg"].spec)) == ("d3", {"port": 5434})
    store.forget_resource("dev-one", "postgres/pg")
    assert sorted(store.resources("dev-one")) == ["service/web"]
    assert sorted(store.resources("dev-two")) == ["service/web"]


def test_resource_key_must_match_its_kind(store: StateStore) -> None:
    with pytest.raises(BadInput, match="'postgres/<name>'"):
        store.record_resource("dev-one", "redis/cache", "postgres", "d", {})


def test_audit_log_is_newest_first_and_filtered(store: StateStore) -> None:
    store.audit("dev-one", "create", "first")
    store.audit(None, "config", "global")
    store.audit("dev-two", "create", "other")
    store.audit("dev-one", "update", "second")
    assert [a.detail for a in store.audit_log("dev-one")] == ["second", "first"]
    log = store.audit_log(limit=2)
    assert [a.detail for a in log] == ["second", "other"]
    assert all(a.actor == store.actor and a.at.tzinfo == UTC for a in log)


def test_actor_can_be_given(store_url: str, home: Path, secret_key: str) -> None:
    with StateStore.open(store_url, home, actor="ci-runner") as s:
        s.audit("dev-one", "create", "x")
        op = s.start_operation("dev-one", "create", [])
        assert s.audit_log()[0].actor == "ci-runner" and op.actor == "ci-runner"
