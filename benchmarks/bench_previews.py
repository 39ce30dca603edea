"""Previews: a masked preview with data against a plain one, wake, and gc over many records.

In one run, on a private copy of the Sunday example (staging made approval_required, with
masking rules, and seeded with ROWS users):
  - `preview create --from staging --with-data` (masked) vs `preview create --from staging`
    (the same environment, no data): wall time and their ratio (goal <= 1.5);
  - `envplane wake` of a sleeping preview: wall time of the command and the wake itself as it
    reports (goal <= 1 s), and the front door's gap: the longest stretch during the wake when
    its port refused connections (between the doorman letting go and nginx listening); and
    where the best wake's time went: the command's start-up, then when each program listened
    (each recorded port polled from outside until it first accepts);
  - `gc` over 200 recorded previews, none expired: the pass as gc reports it and the command's
    wall and CPU time, medians of 3 runs (goal <= 0.5 s for the command, as a timer runs it),
    cold and through a warm server of the bench's own (`envplane warm start`; the warm CPU is
    the client's and the server's child's, as benchkit.WarmServer reads it).
Usage: python benchmarks/bench_previews.py [ROWS]
       python benchmarks/bench_previews.py --gc-only   (the gc figures alone)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import benchkit
import psycopg

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")

RULES = """    data:
      masking:
        public.users.email: hash
        public.users.phone: null
"""
WHY = "staging stands in for an approval environment in this benchmark"


def run(matrix: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [ENVPLANE, "-f", str(matrix), *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"envplane {' '.join(args)} failed:\n{done.stderr}")
    return seconds, done.stdout


MILESTONES = (  # what the masked create's progress says, in the order it happens
    ("the early copies and plan", "creating "),
    ("the masked copy ready", "postgres/postgres: created from the copied data"),
    ("the services started", "[6/8] create service/backend"),
    ("the data operation (a fallback)", "copying data "),
)


def run_timed(matrix: Path, env: dict[str, str], *args: str) -> tuple[float, str, list[str]]:
    """`run`, with the seconds at which each MILESTONES line first appeared on stderr."""
    started = time.monotonic()
    with subprocess.Popen(
        [ENVPLANE, "-f", str(matrix), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [(time.monotonic() - started, line) for line in proc.stderr]
        out = proc.stdout.read()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"envplane {' '.join(args)} failed:\n{''.join(x for _t, x in lines)}")
    marks = []
    for label, text in MILESTONES:
        at = next((t for t, line in lines if text in line), None)
        if at is not None:
            marks.append(f"{label} at {at:.2f} s")
    return seconds, out, marks


def prepare(root: Path) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    matrix = root / "config" / "environment-matrix.yaml"
    text = matrix.read_text()
    text = text.replace(
        "    validation_required: standard\n    approval_required: false",
        "    validation_required: standard\n    approval_required: true",
    )
    text = text.replace(
        "    services:\n      backend:\n        replicas: 2\n",
        "    services:\n      backend:\n        replicas: 2\n" + RULES,
    )
    disable = "".join(
        f'    {rule}: "{WHY}"\n'
        for rule in ("multi-az", "iam-roles-strict", "network-policies", "secondary-region")
    )
    text = text.replace("\nvariables:\n", "\npolicies:\n  disable:\n" + disable + "\nvariables:\n")
    matrix.write_text(text)
    return matrix


def seed(matrix: Path, env: dict[str, str], rows: int) -> None:
    _s, out = run(matrix, env, "info", "staging", "--show-secrets", "-o", "json")
    url = json.loads(out)["endpoints"]["postgres"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text, phone text)")
        conn.execute(
            "INSERT INTO users SELECT g, 'u' || g || '@example.com', '+1-555-' || g "
            "FROM generate_series(1, %s) g",
            [rows],
        )


@dataclass
class Wake:
    wall: float
    """The command's wall time."""
    own: float
    """The wake as it reports it (from its start, after the command's imports)."""
    gap: float
    """The front door's longest refused stretch (the doorman gone, nginx not yet listening)."""
    up: dict[str, float]
    """Seconds from the command's start until each program listened (all its ports)."""


def recorded_ports(env: dict[str, str], name: str) -> dict[str, int]:
    from envplane.state.store import StateStore

    home = Path(env["ENVPLANE_HOME"])
    with StateStore.open(f"sqlite:///{home / 'state.db'}", home) as store:
        record = store.get_environment(name)
    assert record is not None and record.ports, name
    return {key: int(port) for key, port in record.ports.items()}


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def front_door_gap(port: int, started: float, stop: threading.Event) -> tuple[float, float]:
    """Poll 127.0.0.1:port every few ms until `stop`: (the longest stretch it refused
    connections, in s; when, from `started`, that stretch ended: nginx listening)."""
    longest, refused_since, back = 0.0, None, 0.0
    while not stop.is_set():
        ok = _accepts(port)
        at = time.monotonic()
        if ok and refused_since is not None:
            if at - refused_since > longest:
                longest, back = at - refused_since, at - started
            refused_since = None
        elif not ok and refused_since is None:
            refused_since = at
        time.sleep(0.002)
    return longest, back


def first_listening(
    ports: dict[str, int], started: float, stop: threading.Event
) -> dict[str, float]:
    """Seconds from `started` until each port first accepted (polled every few ms until
    `stop`), by program: its kind, or the service (once all of its replicas listen)."""
    waiting, first = dict(ports), {}
    while waiting and not stop.is_set():
        for key, port in list(waiting.items()):
            if _accepts(port):
                first[key] = time.monotonic() - started
                del waiting[key]
        time.sleep(0.002)
    up: dict[str, float] = {}
    for key, at in first.items():
        what = "backends" if key.startswith("service/") else key
        up[what] = max(up.get(what, 0.0), at)
    return up


def bench_wake(matrix: Path, env: dict[str, str], name: str, ports: dict[str, int]) -> Wake:
    run(matrix, env, "sleep", name)
    inner = {key: port for key, port in ports.items() if key != "proxy"}
    assert not any(_accepts(p) for p in inner.values()), "not asleep"
    stop = threading.Event()
    gap: list[tuple[float, float]] = []
    up: list[dict[str, float]] = []
    started = time.monotonic()
    pollers = [
        threading.Thread(target=lambda: gap.append(front_door_gap(ports["proxy"], started, stop))),
        threading.Thread(target=lambda: up.append(first_listening(inner, started, stop))),
    ]
    for poller in pollers:
        poller.start()
    try:
        wall, out = run(matrix, env, "wake", name, "-o", "json")
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
    ((longest, nginx_at),), (listening,) = gap, up
    return Wake(wall, float(json.loads(out)["seconds"]), longest, {**listening, "nginx": nginx_at})


def breakdown(w: Wake) -> str:
    """Where a wake's time went, from the command's start: its start-up (the imports, opening
    the store: all but the wake as it reports), then when each program listened."""
    start = w.wall - w.own
    order = ("postgres", "redis", "prometheus", "backends", "nginx")
    marks = ", ".join(f"{k} {w.up[k] - start:+.2f}" for k in order if k in w.up)
    return (
        f"start-up (imports, the store) {start:.2f} s; then, from the wake's start, listening: "
        f"{marks} s; all observed healthy, journaled and exited {w.own:+.2f} s"
    )


@dataclass
class GcFigures:
    passes: float  # medians, seconds
    wall: float
    cpu: float
    warm_wall: float
    warm_cpu: float
    load: float


def bench_gc(base: Path, runs: int = 3) -> GcFigures:
    """200 recorded previews, none expired, in a store of their own: gc's pass as it reports
    it, the command's wall and CPU seconds, cold and warm (medians of `runs`), the load
    average after them."""
    import resource
    import statistics

    from envplane.state.base import now
    from envplane.state.store import StateStore

    home = base / "gc-home"
    root = base / "gc-sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    with StateStore.open(f"sqlite:///{home / 'state.db'}", home) as store:
        for i in range(200):
            name = f"pr-branch-{i:03d}"
            store.save_environment(
                name, target="local", status="ready", definition={"extends": "staging"}
            )
            store.record_preview(
                name, branch=f"branch-{i}", source="staging", expires_at=now() + timedelta(hours=4)
            )
    env = {**os.environ, "ENVPLANE_HOME": str(home), "NO_COLOR": "1", "ENVPLANE_WARM": "0"}
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = root / "config" / "environment-matrix.yaml"
    run(matrix, env, "gc", "--dry-run", "-o", "json")  # the page cache
    passes, walls, cpus = [], [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, out = run(matrix, env, "gc", "-o", "json")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = json.loads(out)
        assert report["expired"] == [] and report["put_to_sleep"] == [], report
        assert report["orphans"] == [] and report["failed"] == {}, report
        passes.append(float(report["seconds"]))
        walls.append(wall)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    warm = benchkit.WarmServer(base, env)
    try:
        gc = [ENVPLANE, "-f", str(matrix), "gc", "-o", "json"]
        warm.timed(gc)  # its first child
        warm_runs = [warm.timed(gc) for _ in range(runs)]
    finally:
        warm.stop()
    return GcFigures(
        passes=statistics.median(passes),
        wall=statistics.median(walls),
        cpu=statistics.median(cpus),
        warm_wall=statistics.median(r[0] for r in warm_runs),
        warm_cpu=statistics.median(r[1] for r in warm_runs),
        load=os.getloadavg()[0],
    )


def print_gc(gc: GcFigures) -> None:
    print(f"gc over 200 recorded previews, none expired (medians of 3): {gc.passes:.3f} s the pass")
    for how, wall, cpu in (("cold", gc.wall, gc.cpu), ("warm", gc.warm_wall, gc.warm_cpu)):
        verdict = "met" if wall <= 0.5 else "NOT met"
        print(
            f"  the command, {how}: {wall:.2f} s wall, {cpu:.2f} s CPU (goal <= 0.5 s wall: "
            f"{verdict}; load average {gc.load:.1f})"
        )


def main() -> None:
    benchkit.compile_envplane()
    if sys.argv[1:] == ["--gc-only"]:
        base = Path(tempfile.mkdtemp(prefix="envplane-bench-gc-", dir="/tmp"))
        base.chmod(0o755)
        try:
            print_gc(bench_gc(base))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-previews-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    env = {**os.environ, "ENVPLANE_HOME": str(home), "NO_COLOR": "1", "ENVPLANE_WARM": "0"}
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = prepare(base / "sunday")
    made: list[str] = []
    try:
        run(matrix, env, "create", "staging")
        made.append("staging")
        seed(matrix, env, rows)
        plain_s, out = run(
            matrix, env, "preview", "create", "--branch", "bench-plain", "-o", "json"
        )
        plain_doc = json.loads(out)
        plain = plain_doc["name"]
        made.append(plain)
        plain_port = int(plain_doc["url"].rsplit(":", 1)[1].split("/")[0])
        data_s, out, marks = run_timed(
            matrix, env, "preview", "create", "--branch", "bench-data", "--with-data", "-o", "json"
        )
        masked = json.loads(out)
        made.append(masked["name"])
        assert masked["masking"], "the copy was not masked"

        ports = recorded_ports(env, plain)
        assert ports["proxy"] == plain_port, (ports, plain_port)
        wakes = [bench_wake(matrix, env, plain, ports) for _ in range(3)]
        best = min(wakes, key=lambda w: w.own)
        wake_wall, wake_own = best.wall, best.own
        wake_worst = max(w.own for w in wakes)
        gap = max(w.gap for w in wakes)
        gc = bench_gc(base)
    finally:
        for name in reversed(made):
            subprocess.run(
                [ENVPLANE, "-f", str(matrix), "destroy", name, "--force"],
                env=env,
                capture_output=True,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)

    ratio = data_s / plain_s
    print(f"staging seeded with {rows} users; masked columns: users.email, users.phone")
    print(f"preview create, no data:           {plain_s:6.2f} s")
    print(f"preview create --with-data masked: {data_s:6.2f} s")
    print(f"  ratio: {ratio:.2f} (goal <= 1.5) {'ok' if ratio <= 1.5 else 'OVER'}")
    print(f"  masked create: {'; '.join(marks)}; {len(masked['operations'])} operation(s)")
    print(
        f"wake (best of 3): {wake_own:.2f} s as it reports (worst {wake_worst:.2f} s), "
        f"{wake_wall:.2f} s the command (goal <= 1 s); the front door refused connections "
        f"for {gap * 1000:.0f} ms at most"
    )
    print(f"  where the best one's time went: {breakdown(best)}")
    print(f"  the machine's load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_gc(gc)


if __name__ == "__main__":
    main()
