"""Shared (read) locks across real processes, on SQLite and PostgreSQL: any number of readers,
never together with a writer; dead holders of either kind do not block forever."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envplane.errors import LockHeld
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

READER = "op-20260101-0000-aaaaaa"
WRITER = "op-20260101-0000-bbbbbb"


def test_readers_share_and_a_writer_is_refused_naming_the_reader(
    store: StateStore, store_url: str, home: Path
) -> None:
    reader = child(store_url, home, "read", "staging", READER)
    try:
        assert first_line(reader).startswith("reading")
        store.acquire_shared("staging", "op-20260101-0000-cccccc")  # a second reader: fine
        with pytest.raises(LockHeld) as refused:
            store.acquire_lock("staging", WRITER)
        assert READER in refused.value.message and "being read by" in refused.value.message
        assert "op-20260101-0000-cccccc" in refused.value.message  # each reader is named
        assert store.lock_holder("staging") is None  # the refused writer left no row
        store.release_shared("staging", "op-20260101-0000-cccccc")
    finally:
        assert finish(reader) == 0
    store.acquire_lock("staging", WRITER)  # the readers are gone: the writer gets it
    store.release_lock("staging", WRITER)


def test_a_reader_is_refused_while_a_writer_holds_the_environment(
    store: StateStore, store_url: str, home: Path
) -> None:
    writer = child(store_url, home, "hold", "staging", WRITER)
    try:
        first_line(writer)
        with pytest.raises(LockHeld) as refused:
            store.acquire_shared("staging", READER)
        assert WRITER in refused.value.message
        assert store.readers("staging") == []  # the refused reader left no row
        other = child(store_url, home, "read", "staging", READER)  # another process, too
        line = first_line(other)
        assert line.startswith("held") and WRITER in line, line
        assert finish(other) == 0
    finally:
        assert finish(writer) == 0


def test_a_dead_reader_is_removed_by_the_next_writer_and_audited(
    store: StateStore, store_url: str, home: Path
) -> None:
    dead = child(store_url, home, "die-reading", "staging", READER)
    pid = first_line(dead).split()[1]
    assert finish(dead) == 1
    assert store.readers("staging") and f"pid {pid}" in store.readers("staging")[0]
    store.acquire_lock("staging", WRITER)
    assert store.readers("staging") == []
    audit = store.audit_log("staging")[0]
    assert audit.action == "lock-takeover" and f"pid {pid}" in audit.detail


def test_a_dead_writer_does_not_block_a_reader(
    store: StateStore, store_url: str, home: Path
) -> None:
    dead = child(store_url, home, "die-holding", "staging", WRITER)
    first_line(dead)
    assert finish(dead) == 1
    store.acquire_shared("staging", READER)
    assert any(str(os.getpid()) in h for h in store.readers("staging"))
    store.release_shared("staging", READER)
