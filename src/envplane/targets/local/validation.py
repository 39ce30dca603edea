"""Validation of an environment on the local target, each check against the real running parts:
the seed's five areas (infrastructure, applications, networking, monitoring, security) and a
smoke test, as `LocalValidator`."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from envplane.matrix.models import secret_looking
from envplane.state.documents import read_stored_documents
from envplane.targets.checks import Check, Status, Subject, timed

TARGETS_WAIT = 20.0
INFRA_KINDS = ("supervisor", "postgres", "redis", "storage", "config")
APP_KINDS = ("service", "proxy")


def _observe_kinds(category: str, kinds: tuple[str, ...], subject: Subject) -> list[Check]:
    target, ctx = subject.target, subject.ctx
    out = []
    for res in subject.desired.resources:
        if res.kind not in kinds:
            continue

        def probe(res: Any = res) -> tuple[Status, str]:
            seen = target.observe(ctx, res)
            ok = seen.exists and seen.healthy
            return ("pass" if ok else "fail"), seen.detail or ("healthy" if ok else "not healthy")

        out.append(timed(category, res.key, probe))
    return out


def infrastructure(subject: Subject) -> list[Check]:
    return _observe_kinds("infrastructure", INFRA_KINDS, subject)


def applications(subject: Subject) -> list[Check]:
    checks = _observe_kinds("applications", APP_KINDS, subject)
    for s in subject.target.services(subject.ctx, subject.desired):
        status: Status = "pass" if s.healthy else "fail"
        checks.append(
            Check("applications", f"{s.name} replicas", status, f"{s.ready}/{s.desired} ready")
        )
    return checks


def _listeners() -> dict[int, set[str]]:
    """Listening TCP ports -> bound addresses, from /proc/net/tcp{,6}."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A":  # LISTEN
                continue
            addr_hex, port_hex = parts[1].split(":")
            found.setdefault(int(port_hex, 16), set()).add(_addr(addr_hex))
    return found


def _addr(hex_addr: str) -> str:
    if len(hex_addr) == 8:
        return socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
    return "ipv6:" + hex_addr


def _http(url: str) -> httpx.Response:
    return httpx.get(url, timeout=3.0)


def _static(res: Any) -> dict[str, Any]:
    files = res.spec.get("static_files")
    return files if isinstance(files, dict) else {}


def networking(subject: Subject) -> list[Check]:
    ctx, desired = subject.ctx, subject.desired
    checks = []
    listeners = _listeners()
    # Only the ports something should listen on now: each service's other color (the ports
    # its next release starts on) is recorded but idle between rollouts.
    in_use = {int(r.spec["port"]) for r in desired.resources if isinstance(r.spec.get("port"), int)}
    for res in desired.resources:
        in_use.update(int(p) for p in res.spec.get("ports") or () if isinstance(p, int))
    for key, port in sorted(ctx.ports.items()):
        if port not in in_use:
            continue

        def bound(port: int = port) -> tuple[Status, str]:
            addrs = listeners.get(port, set())
            if not addrs:
                return "fail", f"nothing listens on port {port}"
            if addrs != {"127.0.0.1"}:
                return "fail", f"port {port} is bound to {sorted(addrs)}, not only 127.0.0.1"
            return "pass", f"127.0.0.1:{port}"

        checks.append(timed("networking", f"{key} bound to loopback", bound))
    proxy = ctx.ports.get("proxy")
    if proxy:

        def front() -> tuple[Status, str]:
            r = _http(f"http://127.0.0.1:{proxy}/health")
            return ("pass" if r.status_code == 200 else "fail"), f"GET /health -> {r.status_code}"

        checks.append(timed("networking", "frontend answers /health", front))
        static = [r for r in desired.resources if r.kind == "proxy" and "index.html" in _static(r)]
        if static:

            def page() -> tuple[Status, str]:
                r = _http(f"http://127.0.0.1:{proxy}/")
                return ("pass" if r.status_code == 200 else "fail"), f"GET / -> {r.status_code}"

            checks.append(timed("networking", "frontend serves its index page", page))
        if any(r.kind == "service" for r in desired.resources):

            def api() -> tuple[Status, str]:
                r = _http(f"http://127.0.0.1:{proxy}/api/health")
                return (
                    "pass" if r.status_code == 200 else "fail"
                ), f"GET /api/health via nginx -> {r.status_code}"

            checks.append(timed("networking", "nginx proxies /api/ to the backend", api))
    return checks


def monitoring(subject: Subject) -> list[Check]:
    mon = [r for r in subject.desired.resources if r.kind == "monitoring"]
    if not mon:
        return [
            Check("monitoring", "prometheus", "skip", "prometheus is disabled for this environment")
        ]
    checks = _observe_kinds("monitoring", ("monitoring",), subject)
    port = mon[0].spec["port"]

    def targets_up() -> tuple[Status, str]:
        # Prometheus discovers targets a few seconds after a (re)start; give it that long.
        deadline = time.monotonic() + TARGETS_WAIT
        while True:
            data = _http(f"http://127.0.0.1:{port}/api/v1/targets").json()
            active = data["data"]["activeTargets"]
            down = [t["scrapeUrl"] for t in active if t["health"] != "up"]
            if active and not down:
                return "pass", f"{len(active)} target(s) up"
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not active:
            return "fail", "no scrape targets"
        return "fail", f"targets not up: {', '.join(down)}"

    checks.append(timed("monitoring", "scrape targets up", targets_up))
    return checks


def _files_outside_data(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if "data" in path.relative_to(root).parts[:1]:
            continue
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 1_000_000:
            yield path


def security(subject: Subject) -> list[Check]:
    ctx = subject.ctx
    checks = []
    kinds = {r.kind: r for r in subject.desired.resources}
    if "redis" in kinds:

        def redis_auth() -> tuple[Status, str]:
            # A raw RESP PING: a client library would retry the refusal with backoff.
            port = int(kinds["redis"].spec["port"])
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(256).decode(errors="replace").strip()
            if reply.startswith("-NOAUTH"):
                return "pass", "unauthenticated PING refused (NOAUTH)"
            return "fail", f"redis answered an unauthenticated PING with {reply[:40]!r}"

        checks.append(timed("security", "redis requires a password", redis_auth))
    if "postgres" in kinds:

        def pg_auth() -> tuple[Status, str]:
            import psycopg

            spec = kinds["postgres"].spec
            try:
                psycopg.connect(
                    host="127.0.0.1",
                    port=int(spec["port"]),
                    user=str(spec["user"]),
                    password="wrong-password",  # noqa: S106 - deliberately wrong
                    dbname=str(spec["database"]),
                    connect_timeout=3,
                ).close()
            except psycopg.OperationalError:
                return "pass", "a wrong password is refused"
            return "fail", "postgres accepted a wrong password"

        checks.append(timed("security", "postgres refuses a wrong password", pg_auth))
    values = _SecretValues(subject)

    def secret_files() -> tuple[Status, str]:
        exposed = []
        for path in _files_outside_data(ctx.env_dir):
            try:
                text = path.read_bytes()
            except OSError:
                continue
            holds_secret = any(v.encode() in text for v in values.searched().values())
            if holds_secret and stat.S_IMODE(path.stat().st_mode) & 0o077:
                exposed.append(str(path))
        if exposed:
            return "fail", "secrets in files readable by others: " + ", ".join(exposed)
        return "pass", "files holding secrets are private (0600)" + values.short_note()

    checks.append(timed("security", "secret-bearing files are private", secret_files))
    checks.append(
        timed(
            "security", "state store holds no clear secret", lambda: _store_clear(subject, values)
        )
    )
    return checks


# A secret shorter than this is not searched for: it would be found in unrelated text. Those
# envplane generates are 32 characters; a value set with `envplane secret set` may be short.
MIN_SEARCHED = 8
SHOWN_HITS = 5


class _SecretValues:
    """The environment's secrets, decrypted through the store once, on first use (inside a
    check, so a key that does not match fails the check instead of the validation)."""

    def __init__(self, subject: Subject) -> None:
        self._subject = subject
        self._values: dict[str, str] | None = None

    def all(self) -> dict[str, str]:
        if self._values is None:
            ctx = self._subject.ctx
            self._values = {name: ctx.secret(name) for name in self._subject.secret_names()}
        return self._values

    def searched(self) -> dict[str, str]:
        return {n: v for n, v in self.all().items() if len(v) >= MIN_SEARCHED}

    def short_note(self) -> str:
        short = sorted(n for n, v in self.all().items() if len(v) < MIN_SEARCHED)
        if not short:
            return ""
        return f"; not searched for (shorter than {MIN_SEARCHED} characters): {', '.join(short)}"


def _forms(value: str) -> set[str]:
    """The value as a JSON document holds it, too (escaped quotes, backslashes, non-ASCII)."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def _store_clear(subject: Subject, values: _SecretValues) -> tuple[Status, str]:
    """Search what the state store keeps of the environment (resource specs, the journal,
    saved plans, the audit trail; for SQLite also the database file's bytes) for the value
    of each of its secrets, and its recorded service specs for plain values under keys that
    name a secret. A hit names where, never the value."""
    ctx, url = subject.ctx, subject.store_url
    searched = {name: _forms(value) for name, value in values.searched().items()}
    hits: list[str] = []
    found: set[str] = set()
    documents = read_stored_documents(url, ctx.name)
    for doc in documents:
        for name, forms in searched.items():
            if any(form in doc.text for form in forms):
                hits.append(f"{doc.where} holds secret {name}")
                found.add(name)
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.is_file())
        for name, forms in searched.items():
            if name not in found and any(form.encode() in raw for form in forms):
                hits.append(
                    f"the database file {db} holds secret {name} (outside this environment's "
                    "documents: another environment's rows, or free pages)"
                )
    for res in subject.desired.resources:
        env = res.spec.get("env") if res.kind == "service" else None
        for key, value in sorted(env.items() if isinstance(env, dict) else []):
            if value and isinstance(value, str) and secret_looking(key):
                hits.append(
                    f"resource {res.key} spec: env {key} names a secret and holds a plain value "
                    f"(write `{key}: {{secret: NAME}}` in the matrix)"
                )
    if hits:
        more = f"; and {len(hits) - SHOWN_HITS} more" if len(hits) > SHOWN_HITS else ""
        return "fail", "in clear in the state store: " + "; ".join(hits[:SHOWN_HITS]) + more
    return (
        "pass",
        f"{len(searched)} secret(s) searched for in {len(documents)} stored document(s)"
        + (" and the database file" if url.startswith("sqlite:///") else "")
        + ": none in clear"
        + values.short_note(),
    )


def smoke(subject: Subject) -> list[Check]:
    """An API round trip through nginx to the app and PostgreSQL that leaves the app's data as
    it found it: the app's /smoke writes a row and reads it back in a transaction it rolls back;
    an app without /smoke is only read (GET /api/items). Validation never adds rows that would
    travel into backups and clones."""
    proxy = subject.ctx.ports.get("proxy")
    if not proxy or not any(r.kind == "service" for r in subject.desired.resources):
        return [Check("smoke", "api round trip", "skip", "no service behind the proxy")]

    def round_trip() -> tuple[Status, str]:
        probe = httpx.get(f"http://127.0.0.1:{proxy}/api/smoke", timeout=5)
        if probe.status_code == 404:
            listed = httpx.get(f"http://127.0.0.1:{proxy}/api/items", timeout=5)
            if listed.status_code != 200:
                return "fail", f"GET /api/items -> {listed.status_code}"
            return "pass", "GET /api/items through nginx, PostgreSQL behind it (read only)"
        try:
            result = probe.json()
        except ValueError:
            result = {}
        if probe.status_code != 200 or not isinstance(result, dict) or result.get("kept"):
            return "fail", f"GET /api/smoke -> {probe.status_code}: {probe.text[:200]}"
        if result.get("status") != "ok":
            return "fail", f"GET /api/smoke: the row written was not read back: {result}"
        return (
            "pass",
            "GET /api/smoke through nginx: a row written to PostgreSQL and read back, "
            "then rolled back",
        )

    return [timed("smoke", "api round trip", round_trip)]


BY_AREA: dict[str, Callable[[Subject], list[Check]]] = {
    "infrastructure": infrastructure,
    "applications": applications,
    "networking": networking,
    "monitoring": monitoring,
    "security": security,
    "smoke": smoke,
}


class LocalValidator:
    """The local target's `targets.checks.Validator`."""

    def check(self, area: str, subject: Subject) -> list[Check]:
        return BY_AREA[area](subject)
