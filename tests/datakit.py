"""Helpers for the data tests: seed real data into an environment, and digest it by content.

Digests compare contents, not counts: md5 of every table's rows in order, md5 of every large
object, Redis DUMP of every key (with whether it expires), sha256 of every stored object.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests.conftest import Project

ROWS = 10_000  # users; twice as many payments


@dataclass(frozen=True)
class Urls:
    postgres: str
    redis: str
    frontend: str
    storage: Path


def urls(project: Project, env: str) -> Urls:
    info = project.json("info", env, "--show-secrets")
    assert isinstance(info, dict), info
    ends = info["endpoints"]
    return Urls(
        ends["postgres"], ends["redis"], ends["frontend"], Path(ends["storage"][len("file://") :])
    )


def seed(project: Project, env: str, rows: int = ROWS) -> Urls:
    """Several tables with a foreign key, a large object, Redis keys of five types, files."""
    u = urls(project, env)
    with psycopg.connect(u.postgres, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, phone text, "
            "name text, created timestamptz DEFAULT '2026-01-01')"
        )
        conn.execute(
            "CREATE TABLE payments (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), "
            "card varchar(19), amount numeric(12,2), payer_email text)"
        )
        conn.execute("CREATE TABLE docs (id serial PRIMARY KEY, body jsonb, blob oid)")
        conn.execute(
            "INSERT INTO users SELECT g, 'user' || g || '@example.com', "
            "'+1-555-' || lpad(g::text, 7, '0'), md5(g::text) FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute(
            "INSERT INTO payments SELECT g, 1 + (g %% %s), '4111' || lpad(g::text, 12, '0'), "
            "(g %% 1000) / 3.0, 'user' || (1 + (g %% %s)) || '@example.com' "
            "FROM generate_series(1, %s) g",
            [rows, rows, rows * 2],
        )
        conn.execute(
            "INSERT INTO docs (body, blob) VALUES (%s, lo_from_bytea(0, %s))",
            [json.dumps({"title": "big"}), bytes(range(256)) * 4096],
        )
    client = redis.Redis.from_url(u.redis)
    client.set("str:1", "hello")
    client.set("str:ttl", "expires", ex=3600)
    client.hset("hash:1", mapping={f"f{i}": i for i in range(100)})
    client.rpush("list:1", *range(200))
    client.sadd("set:1", *range(50))
    client.zadd("zset:1", {f"m{i}": i for i in range(80)})
    client.close()
    (u.storage / "reports").mkdir(exist_ok=True)
    (u.storage / "reports" / "q1.csv").write_bytes(b"a,b\n" * 5000)
    (u.storage / "avatar.bin").write_bytes(bytes(range(256)) * 100)
    return u


def pg_digest(url: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || relname FROM pg_stat_user_tables ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {table} t"
            ).fetchone()
            assert row is not None
            out[table] = f"{row[0]}:{row[1]}"
        blobs = conn.execute(
            "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid"
        ).fetchall()
        out["large_objects"] = json.dumps([b[1] for b in blobs])
    return out


def redis_digest(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url)
    try:
        keys = sorted(client.keys("*"))
        return {
            k.decode(): hashlib.sha256(client.dump(k) or b"").hexdigest()
            + (":expires" if client.ttl(k) > 0 else "")
            for k in keys
        }
    finally:
        client.close()


def files_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def digest(project: Project, env: str, known: Urls | None = None) -> dict[str, Any]:
    """Pass `known` (from urls()) to skip asking `envplane info` again."""
    u = known or urls(project, env)
    return {
        "postgres": pg_digest(u.postgres),
        "redis": redis_digest(u.redis),
        "files": files_digest(u.storage),
    }


def mutate(project: Project, env: str, known: Urls | None = None) -> None:
    """Change and delete data everywhere, so a restore has something to undo."""
    u = known or urls(project, env)
    with psycopg.connect(u.postgres, autocommit=True) as conn:
        conn.execute("DELETE FROM payments WHERE id % 3 = 0")
        conn.execute("UPDATE users SET email = 'changed' WHERE id < 100")
        conn.execute("DROP TABLE docs")
        conn.execute("CREATE TABLE extra (x int)")
    client = redis.Redis.from_url(u.redis)
    client.delete("hash:1")
    client.set("str:1", "changed")
    client.set("new:key", "1")
    client.close()
    (u.storage / "avatar.bin").unlink()
    (u.storage / "new.txt").write_text("new")


@dataclass
class Prober:
    """Hits an environment's /api/health and its database in a loop, recording any failure."""

    urls: Urls
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.urls.frontend + "api/health", timeout=5) as r:
                    if r.status != 200:
                        self.errors.append(f"health HTTP {r.status}")
                with psycopg.connect(self.urls.postgres, connect_timeout=5) as conn:
                    conn.execute("SELECT count(*) FROM users").fetchone()
                self.requests += 1
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.02)

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
