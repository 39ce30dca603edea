"""The Sunday example backend: a small real service for envplane to deploy.

Runs a stdlib ThreadingHTTPServer on 127.0.0.1:$PORT and uses the environment's PostgreSQL and
Redis, so a created environment does something real:

    GET  /health      200 {"status": "ok", "postgres": "ok", "redis": "ok", ...},
                      or 503 naming what is down
    GET  /metrics     Prometheus text: requests, dependency up gauges, info
    GET  /api/info    environment, version, replica, and a Redis-backed visit counter
    GET  /api/items   rows of the `items` table (created on first use)
    POST /api/items   {"name": "..."} adds a row
    GET  /api/smoke   writes a row and reads it back inside a transaction that is rolled back:
                      the write path works, and the table is left exactly as it was
    GET  /api/version 200 {"version": ..., "environment": ...}, from version 1.1 on (any VERSION
                      whose major.minor is at least 1.1); 404 in older ones

Versions, for trying releases and canaries: VERSION names the release this process plays. One
whose name ends in "-bad" (e.g. 1.2.0-bad) answers 500 to a share FAIL_SHARE (0..1, default 0.3)
of the requests to every route but /health and /metrics, picked by a random sequence seeded with
the version and replica (the same run of answers every time): its health checks pass, and only
an analysis of its traffic tells it is bad.

nginx proxies /api/ with `proxy_pass http://upstream/;`, which strips the /api prefix, so every
route is also served without it (/info, /items, /smoke, /version).

`backend.py migrate` is a migration for a release to declare (`migrate:` in the matrix,
docs/delivery.md): it adds the column `items.tag` (NOT NULL, default 'v1.1'), so every row's
content changes; run twice, it changes nothing more.

Configuration (all from the environment envplane gives the program):
    PORT, REPLICA                                  where to listen, which replica this is
    ENVPLANE_CONFIG_DIR                            rendered config: backend-config/database.json
                                                   names the database, backend-config/redis.json
                                                   the key prefix
    DATABASE_HOST, DATABASE_PORT, DATABASE_USER, DATABASE_PASSWORD, DATABASE_NAME (fallback)
    REDIS_HOST, REDIS_PORT, REDIS_PASSWORD
    ENVIRONMENT_NAME (or DEPLOYMENT_ENVIRONMENT), VERSION, FAIL_SHARE
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT = 2
MAX_BODY = 64 * 1024
QUIET_PATHS = ("/health", "/metrics")
ROUTES = ("/health", "/metrics", "/info", "/items", "/smoke", "/version")
VERSION_RE = re.compile(r"(\d+)\.(\d+)")
VERSION_ROUTE_SINCE = (1, 1)
DEFAULT_FAIL_SHARE = 0.3
CREATE_ITEMS = (
    "CREATE TABLE IF NOT EXISTS items ("
    " id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
SMOKE_ID = -1  # an id the table's sequence never hands out: a smoke write spends no value of it


def _read_json(name: str) -> dict[str, Any]:
    base = os.environ.get("ENVPLANE_CONFIG_DIR")
    if not base:
        return {}
    try:
        data = json.loads((Path(base) / "backend-config" / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def major_minor(version: str) -> tuple[int, int] | None:
    """(1, 2) of "1.2.0", "v1.2", "1.2.0-rc1"; None for a name with no number.number ("dev")."""
    found = VERSION_RE.search(version)
    return (int(found[1]), int(found[2])) if found else None


def fail_share(raw: str | None) -> float:
    """FAIL_SHARE as a share within 0..1; the default when unset or not a number."""
    try:
        share = float(raw) if raw else DEFAULT_FAIL_SHARE
    except ValueError:
        return DEFAULT_FAIL_SHARE
    return DEFAULT_FAIL_SHARE if math.isnan(share) else min(1.0, max(0.0, share))


class Settings:
    def __init__(self) -> None:
        env = os.environ
        self.port = int(env.get("PORT", "8080"))
        self.replica = env.get("REPLICA", "0")
        self.environment = (
            env.get("ENVIRONMENT_NAME") or env.get("DEPLOYMENT_ENVIRONMENT") or "unknown"
        )
        self.version = env.get("VERSION") or env.get("APP_VERSION") or "dev"
        parsed = major_minor(self.version)
        self.has_version_route = parsed is not None and parsed >= VERSION_ROUTE_SINCE
        bad = self.version.endswith("-bad")
        self.fail_share = fail_share(env.get("FAIL_SHARE")) if bad else 0.0
        database = _read_json("database.json").get("connection", {})
        self.db = {
            "host": env.get("DATABASE_HOST", "127.0.0.1"),
            "port": int(env.get("DATABASE_PORT", "5432")),
            "user": env.get("DATABASE_USER", "app"),
            "password": env.get("DATABASE_PASSWORD", ""),
            "dbname": database.get("database") or env.get("DATABASE_NAME", "app"),
            "connect_timeout": CONNECT_TIMEOUT,
        }
        redis_conf = _read_json("redis.json").get("connection", {})
        self.key_prefix = str(redis_conf.get("keyPrefix") or f"sunday:{self.environment}:")
        self.redis = redis.Redis(
            host=env.get("REDIS_HOST", "127.0.0.1"),
            port=int(env.get("REDIS_PORT", "6379")),
            password=env.get("REDIS_PASSWORD") or None,
            socket_timeout=CONNECT_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # redis-py 6+ retries a refused connection 3 times with up to 1+2+4 s of backoff:
            # /health must say "redis down" at once, not after seconds a load balancer gives up.
            retry=Retry(NoBackoff(), 0),
        )


class Database:
    """One shared connection, re-opened after a failure; the table is created on first use."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    return cur.fetchall() if cur.description else []
            except psycopg.Error:
                self._close()
                raise

    def smoke(self) -> dict[str, Any]:
        """Insert a row and read it back in one transaction that is always rolled back."""
        marker = f"smoke-{os.getpid()}-{time.time_ns()}"
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(force_rollback=True):
                    conn.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (SMOKE_ID, marker))
                    row = conn.execute(
                        "SELECT name FROM items WHERE id = %s", (SMOKE_ID,)
                    ).fetchone()
            except psycopg.Error:
                self._close()
                raise
        read_back = row is not None and row[0] == marker
        return {"status": "ok" if read_back else "failed", "read_back": read_back, "kept": False}

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self._params, autocommit=True)
            self._conn.execute(CREATE_ITEMS)
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class App:
    def __init__(self) -> None:
        self.settings = Settings()
        self.db = Database(self.settings.db)
        self.requests: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()
        self.rng = random.Random(f"{self.settings.version}/{self.settings.replica}")  # noqa: S311

    def injected_failure(self, route: str) -> bool:
        """Whether a "-bad" version fails this request (never its health or metrics)."""
        if not self.settings.fail_share or route in QUIET_PATHS:
            return False
        with self.lock:
            return self.rng.random() < self.settings.fail_share

    def check(self) -> dict[str, str]:
        status: dict[str, str] = {}
        try:
            self.db.run("SELECT 1")
            status["postgres"] = "ok"
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            status["postgres"] = f"down: {first}"
        try:
            self.settings.redis.ping()
            status["redis"] = "ok"
        except redis.RedisError as exc:
            status["redis"] = f"down: {exc}"
        return status

    def count(self, path: str, code: int) -> None:
        with self.lock:
            self.requests[(path, code)] += 1

    def metrics(self) -> str:
        s = self.settings
        up = {k: 1 if v == "ok" else 0 for k, v in self.check().items()}
        lines = [
            "# HELP backend_requests_total Requests served, by route and status code.",
            "# TYPE backend_requests_total counter",
        ]
        with self.lock:
            for (path, code), n in sorted(self.requests.items()):
                lines.append(f'backend_requests_total{{path="{path}",code="{code}"}} {n}')
        lines += [
            "# HELP backend_dependency_up Whether a dependency answers (1) or not (0).",
            "# TYPE backend_dependency_up gauge",
        ]
        lines += [f'backend_dependency_up{{dependency="{k}"}} {v}' for k, v in sorted(up.items())]
        lines += [
            "# HELP backend_info Static facts about this replica.",
            "# TYPE backend_info gauge",
            f'backend_info{{environment="{s.environment}",version="{s.version}",'
            f'replica="{s.replica}"}} 1',
        ]
        return "\n".join(lines) + "\n"


APP: App


class Handler(BaseHTTPRequestHandler):
    server_version = "sunday-backend"
    protocol_version = "HTTP/1.1"

    def _route(self) -> str:
        path = self.path.split("?", 1)[0]
        return path[len("/api") :] if path.startswith("/api/") else path

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        route = self._route()
        APP.count(route if route in ROUTES else "other", code)  # bounded label values

    def do_GET(self) -> None:
        route = self._route()
        s = APP.settings
        if APP.injected_failure(route):
            self._send(500, {"error": "injected failure", "version": s.version})
            return
        try:
            if route == "/health":
                status = APP.check()
                ok = all(v == "ok" for v in status.values())
                body = {
                    "status": "ok" if ok else "degraded",
                    **status,
                    "environment": s.environment,
                    "version": s.version,
                    "replica": s.replica,
                }
                self._send(200 if ok else 503, body)
            elif route == "/metrics":
                self._send(200, APP.metrics(), "text/plain; version=0.0.4")
            elif route == "/info":
                visits = int(s.redis.incr(f"{s.key_prefix}visits"))
                self._send(
                    200,
                    {
                        "environment": s.environment,
                        "version": s.version,
                        "replica": s.replica,
                        "visits": visits,
                    },
                )
            elif route == "/items":
                rows = APP.db.run("SELECT id, name, created_at FROM items ORDER BY id")
                self._send(
                    200, [{"id": i, "name": n, "created_at": c.isoformat()} for i, n, c in rows]
                )
            elif route == "/smoke":
                result = APP.db.smoke()
                self._send(200 if result["status"] == "ok" else 500, result)
            elif route == "/version" and s.has_version_route:
                self._send(200, {"version": s.version, "environment": s.environment})
            else:
                self._send(404, {"error": f"no route {route}"})
        except (psycopg.Error, redis.RedisError) as exc:
            self._send(503, {"error": f"{type(exc).__name__}: dependency unavailable"})

    def do_POST(self) -> None:
        if self._route() != "/items":
            self._send(404, {"error": f"no route {self._route()}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        try:
            name = json.loads(self.rfile.read(length) or b"{}").get("name")
        except (ValueError, AttributeError):
            name = None
        if APP.injected_failure("/items"):  # after the body is read: the connection stays usable
            self._send(500, {"error": "injected failure", "version": APP.settings.version})
            return
        if not isinstance(name, str) or not name.strip():
            self._send(400, {"error": 'send JSON like {"name": "..."}'})
            return
        try:
            (row,) = APP.db.run(
                "INSERT INTO items (name) VALUES (%s) RETURNING id", (name.strip(),)
            )
        except psycopg.Error as exc:
            self._send(503, {"error": f"{type(exc).__name__}: dependency unavailable"})
            return
        self._send(201, {"id": row[0], "name": name.strip()})

    def log_message(self, format: str, *args: Any) -> None:
        if self._route() not in QUIET_PATHS:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    global APP
    APP = App()
    server = ThreadingHTTPServer(("127.0.0.1", APP.settings.port), Handler)
    server.daemon_threads = True

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = APP.settings
    print(
        f"sunday backend {s.version} ({s.environment}, replica {s.replica}) on 127.0.0.1:{s.port}",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever(poll_interval=0.05)  # shutdown() waits up to one interval
    server.server_close()
    APP.db.close()
    APP.settings.redis.close()
    print("sunday backend stopped", file=sys.stderr, flush=True)


def migrate() -> None:
    """Bring the schema to this version's: the table, then its `tag` column."""
    settings = Settings()
    settings.redis.close()  # a migration touches only the database
    with psycopg.connect(**settings.db, autocommit=True) as conn:
        conn.execute(CREATE_ITEMS)
        conn.execute("ALTER TABLE items ADD COLUMN IF NOT EXISTS tag text NOT NULL DEFAULT 'v1.1'")
        (count,) = conn.execute("SELECT count(*) FROM items").fetchone() or (0,)
    print(f"items has a tag column ({count} rows) for {settings.version}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["migrate"]:
        migrate()
    else:
        main()
