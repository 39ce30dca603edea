"""Secrets: encrypted before they reach the database; a wrong key is named as such."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from envplane.errors import BadInput, EnvplaneError, InvalidName
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    raw_rows,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

VALUE = "pg-pass-Zq8!unique-value-4711"


def test_secrets_round_trip(store: StateStore) -> None:
    store.put_secret("dev-one", "postgres-password", VALUE)
    store.put_secret("dev-one", "redis-password", "r")
    store.put_secret("dev-two", "postgres-password", "other")
    store.put_secret("dev-one", "redis-password", "r2")  # overwrite
    assert store.get_secret("dev-one", "postgres-password") == VALUE
    assert store.get_secret("dev-one", "redis-password") == "r2"
    assert store.secret_names("dev-one") == ["postgres-password", "redis-password"]
    store.delete_secrets("dev-one")
    assert store.secret_names("dev-one") == []
    assert store.get_secret("dev-two", "postgres-password") == "other"


def test_secret_values_never_reach_the_database_in_clear(
    store: StateStore, store_url: str, tmp_path: Path
) -> None:
    store.put_secret("dev-one", "postgres-password", VALUE)
    rows = raw_rows(store_url, "SELECT env, name, ciphertext FROM secrets")
    assert len(rows) == 1 and rows[0][:2] == ("dev-one", "postgres-password")
    assert VALUE not in str(rows[0][2])
    if store_url.startswith("sqlite"):
        files = list((tmp_path / "db").glob("state.db*"))
        assert files and all(VALUE.encode() not in f.read_bytes() for f in files)


def test_a_wrong_key_is_named_with_a_hint(
    store: StateStore, store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_secret("dev-one", "postgres-password", VALUE)
    other = Fernet.generate_key().decode()
    monkeypatch.setenv("ENVPLANE_SECRET_KEY", other)
    with StateStore.open(store_url, home) as wrong:
        with pytest.raises(EnvplaneError, match="does not match") as caught:
            wrong.get_secret("dev-one", "postgres-password")
        assert caught.value.hint and "ENVPLANE_SECRET_KEY" in caught.value.hint
        assert other not in str(caught.value) + caught.value.hint
        with pytest.raises(EnvplaneError, match="does not match"):  # and writes no mixed keys
            wrong.put_secret("dev-two", "postgres-password", "x")
    assert store.secret_names("dev-two") == []


def test_key_file_is_created_private_and_reused(
    store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVPLANE_SECRET_KEY", raising=False)
    with StateStore.open(store_url, home) as first:
        first.put_secret("dev-one", "postgres-password", VALUE)
    key_file = home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key_file.read_bytes().strip())  # a valid key
    with StateStore.open(store_url, home) as again:
        assert again.get_secret("dev-one", "postgres-password") == VALUE


def test_key_file_readable_by_others_is_refused(
    store: StateStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVPLANE_SECRET_KEY", raising=False)
    key_file = home / "secret.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o644)
    with pytest.raises(BadInput, match="can be read by other users") as caught:
        store.put_secret("dev-one", "postgres-password", VALUE)
    assert caught.value.hint == f"run `chmod 600 {key_file}`"


def test_malformed_key_is_bad_input(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVPLANE_SECRET_KEY", "not-a-key")
    with pytest.raises(BadInput, match="ENVPLANE_SECRET_KEY does not hold a valid key") as caught:
        store.put_secret("dev-one", "postgres-password", VALUE)
    assert "not-a-key" not in str(caught.value)


def test_missing_secret_and_bad_names(store: StateStore) -> None:
    with pytest.raises(EnvplaneError, match="has no secret 'postgres-password'"):
        store.get_secret("dev-one", "postgres-password")
    with pytest.raises(InvalidName):
        store.put_secret("dev-one", "../key", VALUE)
    with pytest.raises(InvalidName):
        store.put_secret("DEV", "postgres-password", VALUE)
