"""Locks across real processes: one operation per environment, stale holders taken over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envplane.errors import EXIT_BLOCKED, InvalidName, LockHeld
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    child,
    finish,
    first_line,
    home_fixture,
    raw_execute,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)


def test_second_process_is_refused_with_the_holder_named(
    store: StateStore, store_url: str, home: Path
) -> None:
    holder = child(store_url, home, "hold", "dev-one", "op-20260101-0000-aaaaaa")
    try:
        pid = first_line(holder).split()[1]
        with pytest.raises(LockHeld) as caught:
            store.acquire_lock("dev-one", "op-20260101-0000-bbbbbb")
        assert caught.value.exit_code == EXIT_BLOCKED
        assert f"op-20260101-0000-aaaaaa pid {pid} on " in caught.value.holder
        assert "dev-one" in str(caught.value) and caught.value.hint
        assert store.lock_holder("dev-one") == caught.value.holder
    finally:
        assert finish(holder) == 0
    assert store.lock_holder("dev-one") is None
    store.acquire_lock("dev-one", "op-20260101-0000-bbbbbb")
    assert "op-20260101-0000-bbbbbb" in (store.lock_holder("dev-one") or "")


def test_exactly_one_of_racing_processes_wins(
    store: StateStore, store_url: str, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    racers = [
        child(store_url, home, "race", "dev-one", f"op-20260101-0000-00000{i}", str(go))
        for i in range(3)
    ]
    try:
        assert [first_line(r) for r in racers] == ["ready"] * 3
        go.touch()
        results = [first_line(r).split(" ", 1) for r in racers]
        winners = [pid for verdict, pid in results if verdict == "won"]
        assert len(winners) == 1, results
        held = [holder for verdict, holder in results if verdict == "held"]
        assert len(held) == 2 and all(f"pid {winners[0]} on" in h for h in held)
    finally:
        assert [finish(r) for r in racers] == [0, 0, 0]
    assert store.lock_holder("dev-one") is None


def test_different_environments_lock_in_parallel(
    store: StateStore, store_url: str, home: Path
) -> None:
    holder = child(store_url, home, "hold", "dev-one", "op-20260101-0000-aaaaaa")
    try:
        first_line(holder)
        store.acquire_lock("dev-two", "op-20260101-0000-bbbbbb")
        assert "pid" in (store.lock_holder("dev-one") or "")
        assert str(os.getpid()) in (store.lock_holder("dev-two") or "")
    finally:
        finish(holder)


def test_stale_lock_of_a_dead_process_is_taken_over_and_audited(
    store: StateStore, store_url: str, home: Path
) -> None:
    dead = child(store_url, home, "die-holding", "dev-one", "op-20260101-0000-aaaaaa")
    pid = first_line(dead).split()[1]
    assert finish(dead) == 1  # exited and reaped, lock row left behind
    assert f"pid {pid}" in (store.lock_holder("dev-one") or "")

    store.acquire_lock("dev-one", "op-20260101-0000-bbbbbb")
    assert (store.lock_holder("dev-one") or "").startswith(
        f"op-20260101-0000-bbbbbb pid {os.getpid()} "
    )
    takeover = store.audit_log("dev-one")[0]
    assert takeover.action == "lock-takeover"
    assert f"pid {pid}" in takeover.detail and "no longer running" in takeover.detail


def test_reused_pid_is_recognised_as_stale(store: StateStore, store_url: str) -> None:
    # The row names this (live) pid, but a process that started at another time.
    raw_execute(
        store_url,
        "INSERT INTO locks (env, operation_id, holder, pid, host, pid_start, acquired_at) "
        "VALUES ('dev-one', 'op-x', 'op-x pid 1 on h by u', :pid, :host, 1, :at)",
        pid=os.getpid(),
        host=os.uname().nodename,
        at="2026-01-01 00:00:00",
    )
    store.acquire_lock("dev-one", "op-20260101-0000-bbbbbb")
    assert "op-20260101-0000-bbbbbb" in (store.lock_holder("dev-one") or "")


def test_holder_on_another_host_is_never_presumed_dead(store: StateStore, store_url: str) -> None:
    raw_execute(
        store_url,
        "INSERT INTO locks (env, operation_id, holder, pid, host, pid_start, acquired_at) "
        "VALUES ('dev-one', 'op-x', 'op-x pid 999999 on ci-7 by ci', 999999, 'ci-7', NULL, :at)",
        at="2026-01-01 00:00:00",
    )
    with pytest.raises(LockHeld, match="ci-7"):
        store.acquire_lock("dev-one", "op-20260101-0000-bbbbbb")


def test_acquire_is_reentrant_and_release_only_by_the_holder(store: StateStore) -> None:
    store.acquire_lock("dev-one", "op-a")
    store.acquire_lock("dev-one", "op-a")  # the same operation in the same process: fine
    store.release_lock("dev-one", "op-b")  # not the holder: nothing happens
    assert "op-a" in (store.lock_holder("dev-one") or "")
    store.release_lock("dev-one", "op-a")
    store.release_lock("dev-one", "op-a")  # twice is harmless
    assert store.lock_holder("dev-one") is None


def test_lock_names_are_checked(store: StateStore) -> None:
    with pytest.raises(InvalidName):
        store.acquire_lock("../etc", "op-a")
