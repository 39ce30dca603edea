"""Previews: a masked preview with data against a plain one, wake, and gc over many records.

In one run, on a private copy of the Sunday example (staging made approval_required, with
masking rules, and seeded with ROWS users):
  - `preview create --from staging --with-data` (masked) vs `preview create --from staging`
    (the same environment, no data): wall time and their ratio (goal <= 1.5);
  - `envplane wake` of a sleeping preview: wall time of the command and the wake itself as it
    reports (goal <= 1 s), and the front door's gap: the longest stretch during the wake when
    its port refused connections (between the doorman letting go and nginx listening);
  - `gc` over 200 recorded previews, none expired: the pass as gc reports it and the command's
    wall and CPU time, medians of 3 runs (goal <= 0.5 s for the command, as a timer runs it).
Usage: python benchmarks/bench_previews.py [ROWS]
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
from datetime import timedelta
from pathlib import Path

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


def front_door_gap(port: int, stop: threading.Event) -> list[float]:
    """Poll 127.0.0.1:port every few ms until `stop`; [the longest refused stretch, in s]."""
    longest, refused_since = 0.0, None
    while not stop.is_set():
        with socket.socket() as sock:
            sock.settimeout(0.5)
            ok = sock.connect_ex(("127.0.0.1", port)) == 0
        at = time.monotonic()
        if ok and refused_since is not None:
            longest, refused_since = max(longest, at - refused_since), None
        elif not ok and refused_since is None:
            refused_since = at
        time.sleep(0.002)
    return [longest]


def bench_wake(
    matrix: Path, env: dict[str, str], name: str, port: int
) -> tuple[float, float, float]:
    """(the command's wall time, the wake as it reports, the front door's longest gap)."""
    run(matrix, env, "sleep", name)
    stop = threading.Event()
    gap: list[float] = []
    poller = threading.Thread(target=lambda: gap.extend(front_door_gap(port, stop)))
    poller.start()
    try:
        wall, out = run(matrix, env, "wake", name, "-o", "json")
    finally:
        stop.set()
        poller.join()
    return wall, float(json.loads(out)["seconds"]), gap[0] if gap else 0.0


def bench_gc(base: Path, runs: int = 3) -> tuple[float, float, float, float]:
    """200 recorded previews, none expired, in a store of their own: gc's pass as it reports
    it, the command's wall and CPU seconds (medians of `runs`), the load average after them."""
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
    env = {**os.environ, "ENVPLANE_HOME": str(home), "NO_COLOR": "1"}
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = root / "config" / "environment-matrix.yaml"
    run(matrix, env, "gc", "--dry-run", "-o", "json")  # warm
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
    load = os.getloadavg()[0]
    return statistics.median(passes), statistics.median(walls), statistics.median(cpus), load


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-previews-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    env = {**os.environ, "ENVPLANE_HOME": str(home), "NO_COLOR": "1"}
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
        data_s, out = run(
            matrix, env, "preview", "create", "--branch", "bench-data", "--with-data", "-o", "json"
        )
        masked = json.loads(out)
        made.append(masked["name"])
        assert masked["masking"], "the copy was not masked"

        wakes = [bench_wake(matrix, env, plain, plain_port) for _ in range(3)]
        wake_wall, wake_own, gap = min(wakes, key=lambda w: w[1])
        wake_worst = max(w[1] for w in wakes)
        gap = max(w[2] for w in wakes)
        gc_pass, gc_wall, gc_cpu, gc_load = bench_gc(base)
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
    print(
        f"wake (best of 3): {wake_own:.2f} s as it reports (worst {wake_worst:.2f} s), "
        f"{wake_wall:.2f} s the command (goal <= 1 s); the front door refused connections "
        f"for {gap * 1000:.0f} ms at most"
    )
    print(f"  the machine's load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"gc over 200 recorded previews, none expired (medians of 3): {gc_pass:.3f} s the pass")
    verdict = "met" if gc_wall <= 0.5 else "NOT met"
    print(
        f"  the command: {gc_wall:.2f} s wall, {gc_cpu:.2f} s CPU (goal <= 0.5 s wall: {verdict}; "
        f"load average {gc_load:.1f})"
    )


if __name__ == "__main__":
    main()
