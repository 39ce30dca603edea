"""Helpers for the local-driver tests: a private 0755 home, free ports, hand-built specs.

Everything runs for real (supervisord, PostgreSQL, Redis, nginx, Prometheus, the example
backend) on ports the OS hands out, under a home of its own, so tests run in parallel."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envplane.render.model import Resource
from envplane.targets.base import EnvContext
from envplane.targets.local import LocalTarget

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
BACKEND = EXAMPLE / "app" / "backend.py"

SECRETS = {
    "postgres-password": "pg-S3cret;#%'\"x",  # characters that break naive ini/shell quoting
    "redis-password": "redis secret #1;%",
}


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Env:
    home: Path
    ctx: EnvContext
    target: LocalTarget
    ports: dict[str, int]
    progress: list[str] = field(default_factory=list)

    @property
    def env_dir(self) -> Path:
        return self.ctx.env_dir


@contextmanager
def local_env(name: str = "dev-test", n_service_ports: int = 2) -> Iterator[Env]:
    home = Path(tempfile.mkdtemp(prefix="envplane-local-", dir="/tmp"))
    home.chmod(0o755)
    keys = ["proxy", "postgres", "redis", "prometheus"]
    keys += [f"service/backend/{i}" for i in range(n_service_ports)]
    ports = dict(zip(keys, free_ports(len(keys)), strict=True))
    messages: list[str] = []
    ctx = EnvContext(
        name=name,
        project="sunday",
        env_dir=home / "environments" / name,
        ports=ports,
        secret=SECRETS.__getitem__,
        matrix_dir=EXAMPLE / "config",
        progress=messages.append,
    )
    env = Env(home, ctx, LocalTarget(), ports, messages)
    try:
        yield env
    finally:
        try:
            env.target.teardown(ctx)
        finally:
            shutil.rmtree(home, ignore_errors=True)


# -- specs, as the lead's render would produce them -------------------------------------------


def supervisor() -> Resource:
    return Resource("supervisor", "supervisor", {})


def postgres(env: Env, version: str = "14.9") -> Resource:
    spec = {
        "version": version,
        "port": env.ports["postgres"],
        "database": "sunday_dev",
        "user": "app",
        "password_secret": "postgres-password",
    }
    return Resource("postgres", "postgres", spec)


def redis(env: Env) -> Resource:
    return Resource(
        "redis", "redis", {"port": env.ports["redis"], "password_secret": "redis-password"}
    )


def storage() -> Resource:
    return Resource("storage", "storage", {"versioning": True})


def config(env: Env, extra: dict[str, str] | None = None) -> Resource:
    files = {
        "backend-config/database.json": json.dumps(
            {
                "connection": {
                    "host": "127.0.0.1",
                    "port": env.ports["postgres"],
                    "database": "sunday_dev",
                }
            }
        ),
        "backend-config/redis.json": json.dumps({"connection": {"keyPrefix": "sunday:dev:"}}),
        "app-config/LOG_LEVEL": "debug",
        **(extra or {}),
    }
    return Resource("config", "config", {"files": files})


def backend(env: Env, replicas: int = 1, extra_env: dict[str, str] | None = None) -> Resource:
    spec = {
        "command": [sys.executable, str(BACKEND)],
        "cwd": str(EXAMPLE),
        "replicas": replicas,
        "ports": [env.ports[f"service/backend/{i}"] for i in range(replicas)],
        "health_path": "/health",
        "env": {
            "ENVIRONMENT_NAME": env.ctx.name,
            "VERSION": "1.2.3",
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": str(env.ports["postgres"]),
            "DATABASE_USER": "app",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(env.ports["redis"]),
            **(extra_env or {}),
        },
        "secret_env": {
            "DATABASE_PASSWORD": "postgres-password",
            "REDIS_PASSWORD": "redis-password",
        },
    }
    return Resource("service", "backend", spec)


SERVER_BLOCK = """server {{
    listen 127.0.0.1:{port};
    root {root};
    index index.html;
    location /api/ {{
        proxy_pass http://backend_service/;
        proxy_set_header Host $host;
    }}
    location / {{
        try_files $uri $uri/ /index.html;
    }}
}}
"""


def proxy(
    env: Env, upstream_ports: list[int] | None = None, server_conf: str | None = None
) -> Resource:
    ports = upstream_ports if upstream_ports is not None else [env.ports["service/backend/0"]]
    spec = {
        "port": env.ports["proxy"],
        "server_conf": server_conf
        or SERVER_BLOCK.format(port=env.ports["proxy"], root=env.env_dir / "frontend"),
        "upstreams": {"backend_service": [{"port": p, "weight": 1} for p in ports]},
        "static_files": {
            "index.html": (EXAMPLE / "frontend" / "index.html").read_text(encoding="utf-8"),
            "env.js": "window.ENV = {API_URL: '/api', ENVIRONMENT: 'dev-test'};\n",
        },
    }
    return Resource("proxy", "nginx", spec)


def monitoring(env: Env, replicas: int = 1) -> Resource:
    targets = [f"127.0.0.1:{env.ports[f'service/backend/{i}']}" for i in range(replicas)]
    spec = {
        "port": env.ports["prometheus"],
        "scrape_interval": "1s",
        "jobs": [{"name": "backend", "metrics_path": "/metrics", "targets": targets}],
    }
    return Resource("monitoring", "prometheus", spec)


def all_resources(env: Env) -> list[Resource]:
    return [
        supervisor(),
        postgres(env),
        redis(env),
        storage(),
        config(env),
        backend(env),
        proxy(env),
        monitoring(env),
    ]


# -- HTTP -------------------------------------------------------------------------------------


def call(
    port: int, path: str, method: str = "GET", body: Any = None, timeout: float = 5.0
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# -- a tiny service without dependencies, for supervision and traffic tests --------------------

ECHO_APP = """
import os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("replica=%s msg=%s" % (os.environ["REPLICA"], os.environ.get("MSG", ""))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
server.serve_forever(poll_interval=0.1)
"""


def echo_service(env: Env, replicas: int = 1, msg: str = "hello") -> Resource:
    app = env.home / "echo_app.py"
    if not app.exists():
        app.write_text(ECHO_APP, encoding="utf-8")
        app.chmod(0o644)
    spec = {
        "command": [sys.executable, str(app)],
        "cwd": str(env.home),
        "replicas": replicas,
        "ports": [env.ports[f"service/backend/{i}"] for i in range(replicas)],
        "health_path": "/health",
        "env": {"MSG": msg},
        "secret_env": {},
    }
    return Resource("service", "backend", spec)


def program_pid(env: Env, program: str) -> int:
    from envplane.targets.local import supd
    from envplane.targets.local.layout import Layout

    info = supd.client(Layout(env.env_dir)).supervisor.getProcessInfo(program)
    assert info["statename"] == "RUNNING", info
    return int(info["pid"])
