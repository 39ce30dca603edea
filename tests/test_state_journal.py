"""The operation journal: written line by line, survives a killed process, resumable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envplane.errors import BadInput, InvalidName
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    child,
    finish,
    first_line,
    home_fixture,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)


def test_operation_and_steps_are_recorded(store: StateStore) -> None:
    store.save_environment("dev-one", target="local")
    plan = {"steps": [{"key": "postgres/pg", "action": "create"}]}
    op = store.start_operation("dev-one", "create", plan)
    assert re.fullmatch(r"op-\d{8}-\d{4}-[0-9a-f]{6}", op.id)
    assert (op.status, op.plan, op.finished_at) == ("running", plan, None)
    assert store.get_environment("dev-one").last_operation_id == op.id  # type: ignore[union-attr]

    store.start_step(op.id, 0, "postgres/pg", "create")
    store.finish_step(op.id, 0, "done", "initdb ok")
    store.start_step(op.id, 1, "service/web", "noop")
    store.finish_step(op.id, 1, "skipped")
    store.finish_operation(op.id, "succeeded")

    got = store.get_operation(op.id)
    assert got is not None and got.status == "succeeded" and got.finished_at is not None
    assert [(s.index, s.resource_key, s.action, s.status, s.detail) for s in got.steps] == [
        (0, "postgres/pg", "create", "done", "initdb ok"),
        (1, "service/web", "noop", "skipped", ""),
    ]
    assert all(s.finished_at is not None for s in got.steps)


def test_journal_survives_a_killed_process(store: StateStore, store_url: str, home: Path) -> None:
    proc = child(store_url, home, "die-mid-operation", "dev-one")
    op_id = first_line(proc)
    assert finish(proc) == 1
    op = store.get_operation(op_id)
    assert op is not None and op.status == "running" and op.pid == proc.pid
    assert [(s.index, s.status, s.detail) for s in op.steps] == [
        (0, "done", "cluster initialised"),
        (1, "running", ""),
    ]

    resumed = store.resume_operation(op_id)
    assert resumed.status == "running" and resumed.pid != proc.pid
    store.start_step(op_id, 1, "service/web", "create")
    store.finish_step(op_id, 1, "done")
    store.finish_operation(op_id, "succeeded")
    final = store.get_operation(op_id)
    assert final is not None and [s.status for s in final.steps] == ["done", "done"]


def test_failed_operation_keeps_its_error(store: StateStore) -> None:
    op = store.start_operation("dev-one", "update", [])
    store.start_step(op.id, 0, "service/web", "update")
    store.finish_step(op.id, 0, "failed", "exit 1")
    store.finish_operation(op.id, "failed", error="service/web: health check failed")
    got = store.get_operation(op.id)
    assert got is not None and got.error == "service/web: health check failed"


def test_operations_are_newest_first_limited_and_filtered(store: StateStore) -> None:
    ids = [
        store.start_operation(env, "create", []).id
        for env in ("dev-one", "dev-two", "dev-one", "dev-one")
    ]
    assert [o.id for o in store.operations()] == ids[::-1]
    assert [o.id for o in store.operations("dev-one", limit=2)] == [ids[3], ids[2]]
    assert [o.id for o in store.operations("dev-two")] == [ids[1]]


def test_unknown_operations_and_steps(store: StateStore) -> None:
    assert store.get_operation("op-20260101-0000-ffffff") is None
    with pytest.raises(BadInput, match="no operation 'op-nope'"):
        store.start_step("op-nope", 0, "postgres/pg", "create")
    with pytest.raises(BadInput, match="no operation"):
        store.finish_operation("op-nope", "failed")
    op = store.start_operation("dev-one", "create", [])
    with pytest.raises(BadInput, match="no started step 3"):
        store.finish_step(op.id, 3, "done")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s, op: s.start_step(op, 0, "postgres/pg", "explode"), BadInput),
        (lambda s, op: s.finish_step(op, 0, "great"), BadInput),
        (lambda s, op: s.finish_operation(op, "done"), BadInput),
        (lambda s, op: s.start_operation("Dev One", "create", []), InvalidName),
        (lambda s, op: s.start_operation("dev-one", "Create!", []), InvalidName),
    ],
)
def test_bad_journal_values_are_refused(store: StateStore, call: object, error: type) -> None:
    op = store.start_operation("dev-one", "create", [])
    store.start_step(op.id, 0, "postgres/pg", "create")
    with pytest.raises(error):
        call(store, op.id)  # type: ignore[operator]
    got = store.get_operation(op.id)
    assert got is not None and got.status == "running" and got.steps[0].status == "running"
