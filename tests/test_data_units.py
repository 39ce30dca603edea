"""The pieces of backup and masking that need no server: the encrypted stream format, the
manifest and its ids, key handling, the matrix's `data:` block, derived environments."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from envplane.data import crypto, manifest
from envplane.data.files import ComponentWriter, stage
from envplane.data.manifest import Manifest
from envplane.errors import BadInput, MatrixError, OperationFailed
from envplane.matrix import load_matrix_text
from tests.conftest import EXAMPLE

KEY = bytes(range(32))


def _encrypt(data: bytes, chunk: int = 1000) -> bytes:
    enc = crypto.Encryptor(KEY, chunk=chunk)
    out = [enc.header]
    for start in range(0, len(data), 333):
        out += enc.update(data[start : start + 333])
    return b"".join([*out, enc.finish()])


def _decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    return b"".join(crypto.decrypt_stream(key, io.BytesIO(blob), name="x"))


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000, 12345])
def test_stream_round_trip(size: int) -> None:
    data = os.urandom(size)
    blob = _encrypt(data)
    assert _decrypt(blob) == data
    assert size < 16 or data not in blob


def test_stream_detects_tampering_truncation_and_wrong_key() -> None:
    data = os.urandom(4500)
    blob = _encrypt(data)
    with pytest.raises(crypto.WrongKey):
        _decrypt(blob, key=bytes(32))
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    with pytest.raises(crypto.WrongKey, match="chunk"):
        _decrypt(bytes(flipped))
    chunk = 1000 + crypto.TAG
    body = blob[crypto.HEADER :]
    dropped_last = blob[: crypto.HEADER + 4 * chunk]  # whole chunks, the final one gone
    with pytest.raises(crypto.WrongKey):
        _decrypt(dropped_last)
    swapped = blob[: crypto.HEADER] + body[chunk : 2 * chunk] + body[:chunk] + body[2 * chunk :]
    with pytest.raises(crypto.WrongKey):
        _decrypt(swapped)
    with pytest.raises(OperationFailed, match="header"):
        _decrypt(b"not encrypted at all")


def test_key_from_variable_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    with pytest.raises(crypto.WrongKey, match="no backup key"):
        crypto.load_key(tmp_path, create=False)
    made = crypto.load_key(tmp_path, create=True)
    path = crypto.key_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert crypto.load_key(tmp_path, create=True) == made  # created once, then reused
    monkeypatch.setenv(crypto.KEY_ENV, "correct horse battery staple")
    phrase = crypto.load_key(tmp_path, create=False)
    assert len(phrase) == 32 and phrase != made
    monkeypatch.setenv(crypto.KEY_ENV, "short")
    with pytest.raises(BadInput, match="too short"):
        crypto.load_key(tmp_path, create=False)
    assert crypto.key_id(made) != crypto.key_id(phrase) and made.hex() not in crypto.key_id(made)


def test_ids_are_unique_within_one_second(tmp_path: Path) -> None:
    at = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    ids = [manifest.reserve(tmp_path, "dev-1", at)[0] for _ in range(3)]
    assert ids == [
        "backup-dev-1-20260301-120005",
        "backup-dev-1-20260301-120005-2",
        "backup-dev-1-20260301-120005-3",
    ]
    assert all(manifest.ID_RE.fullmatch(i) for i in ids)
    for bad in ("../x", "backup-dev", "backup-DEV-20260301-120005", "backup-dev-2026-1"):
        with pytest.raises(BadInput):
            manifest.check_backup_id(bad)


def _write_backup(folder: Path, key: bytes | None) -> Manifest:
    comps = []
    for name, data in (("postgres", os.urandom(3000)), ("redis", b"REDIS0011" * 50)):
        writer = ComponentWriter(folder / f"{name}.bin", key)
        writer.write(data)
        comps.append(writer.close(name, "test"))
    m = Manifest(
        backup_id=folder.name,
        source_environment="dev-1",
        backup_type="data",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        created_by="tester",
        envplane_version="0",
        encryption={"algorithm": crypto.ALGORITHM, "key_id": crypto.key_id(key)} if key else None,
        components=comps,
    )
    manifest.write(folder, m)
    return m


@pytest.mark.parametrize("key", [None, KEY])
def test_manifest_round_trip_and_verification(tmp_path: Path, key: bytes | None) -> None:
    backup_id, folder = manifest.reserve(tmp_path, "dev-1", datetime.now(UTC))
    written = _write_backup(folder, key)
    read = manifest.read(folder)
    assert read == written and read.backup_id == backup_id
    staging = tmp_path / "staging"
    staging.mkdir()
    plain = stage(folder, read, staging, key)
    assert plain["redis"].read_bytes() == b"REDIS0011" * 50
    target = folder / "redis.bin"
    original = target.read_bytes()
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 0x80]))
    with pytest.raises(OperationFailed, match="damaged"):
        stage(folder, read, staging, key)
    target.write_bytes(original)
    if key is not None:
        with pytest.raises(crypto.WrongKey, match="another key"):
            stage(folder, read, staging, bytes(32))


def test_damaged_manifest_is_refused(tmp_path: Path) -> None:
    _id, folder = manifest.reserve(tmp_path, "dev-1", datetime.now(UTC))
    _write_backup(folder, None)
    data = json.loads((folder / "manifest.json").read_text())
    data["components"][0]["file"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(OperationFailed, match="unsafe file name"):
        manifest.read(folder)
    (folder / "manifest.json").write_text("{")
    with pytest.raises(OperationFailed, match="damaged"):
        manifest.read(folder)


MATRIX = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()
DATA_BLOCK = """    services:
      backend:
        replicas: 3
    data:
      masking:
        public.users.email: hash
        public.users.phone: null
        public.payments.card: redact
        public.users.name: "someone"
      subset:
        public.orders: "created_at > now() - interval '30 days'"
"""


def _with_data(block: str) -> str:
    return MATRIX.replace("    services:\n      backend:\n        replicas: 3\n", block, 1)


def test_matrix_data_block() -> None:
    m = load_matrix_text(_with_data(DATA_BLOCK), "m.yaml")
    rules = m.environment("production").data
    assert rules is not None
    assert rules.masking == {
        "public.users.email": "hash",
        "public.users.phone": None,
        "public.payments.card": "redact",
        "public.users.name": "someone",
    }
    assert list(rules.subset) == ["public.orders"]
    assert m.environment("staging").data is None


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ("        users.email: hash\n", "data.masking.users.email"),
        ("        public.users.e-mail: hash\n", "data.masking"),
        ("        public.users.email: [1]\n", "data.masking"),
    ],
)
def test_matrix_data_block_errors(bad: str, where: str) -> None:
    text = _with_data(DATA_BLOCK.replace("        public.users.email: hash\n", bad))
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(text, "m.yaml")
    assert where in str(caught.value) and caught.value.line is not None


def test_matrix_subset_clause_is_one_statement() -> None:
    text = _with_data(DATA_BLOCK.replace("interval '30 days'", "1; DROP TABLE users"))
    with pytest.raises(MatrixError, match="may not contain"):
        load_matrix_text(text, "m.yaml")


def test_derived_environment_renders_structurally() -> None:
    from envplane.render.local import desired_local

    m = load_matrix_text(MATRIX, str(EXAMPLE / "config" / "environment-matrix.yaml"))
    derived = m.with_environment("development-2", "development", {})
    ports = {"proxy": 2001, "postgres": 2002, "redis": 2003, "prometheus": 2004}
    ports["service/backend/0"] = 2005
    desired = desired_local(derived, "development-2", env_dir=Path("/tmp/x"), ports=ports)
    files = desired.resource("config/config").spec["files"]
    assert files["app-config/DEPLOYMENT_ENVIRONMENT"] == "development-2"
    assert files["app-config/NODE_ENV"] == "development"  # a value, not the name: kept
    assert desired.resource("postgres/postgres").spec["database"] == "sunday_development_2"
    assert derived.strategy_for("development-2").approval_required is False


def test_a_0001_store_migrates_and_keeps_its_environments(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from envplane.state import migrate
    from envplane.state.store import StateStore

    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO environments (name, target, status, ports, created_at, updated_at) "
                "VALUES ('old-env', 'local', 'ready', '{}', '2026-01-01', '2026-01-01')"
            )
        )
    engine.dispose()
    with StateStore.open(url, tmp_path) as store:
        old = store.get_environment("old-env")
        assert old is not None and old.status == "ready" and old.definition is None
        store.save_environment("new-env", target="local", definition={"extends": "old-env"})
        assert store.get_environment("new-env").definition == {"extends": "old-env"}  # type: ignore[union-attr]
        store.save_environment("new-env", definition={})  # an empty mapping clears it
        assert store.get_environment("new-env").definition is None  # type: ignore[union-attr]
