"""Delivery on the local target against doing the same by hand, in one run.

On a real staging environment of the Sunday example (2 backend replicas behind nginx):

- blue-green: from the switch to all traffic on the new color (the deploy's `switch_seconds`,
  measured until every old nginx worker exited), and a rollback within the scale-down delay
  (a switch only), against a raw `kill -HUP` of nginx waited on the same way;
- rolling: a deploy of the one service with 2 replicas (the whole command) against starting
  2 replicas of the backend by hand against the environment's own PostgreSQL and Redis and
  polling their /health (the raw tool: the process and an HTTP poll), both at once and one at
  a time.

Usage: python benchmarks/bench_delivery.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit
from bench_create import ENVPLANE, EXAMPLE, free_port, http_ok, wait_for

STRATEGY = """  staging:
    primary: rolling
    alternatives: [blue_green]
    validation_required: standard
    approval_required: false
"""
FAST = STRATEGY.replace(
    "approval_required: false\n",
    "approval_required: false\n    scale_down_delay: 10m\n    analysis: {window: 2s, min_requests: 5}\n",
)


class Project:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="envplane-bench-", dir="/tmp"))
        self.base.chmod(0o755)
        self.root = self.base / "sunday"
        shutil.copytree(EXAMPLE, self.root, ignore=shutil.ignore_patterns(".envplane"))
        matrix = self.root / "config" / "environment-matrix.yaml"
        matrix.write_text(matrix.read_text().replace(STRATEGY, FAST))
        self.matrix = matrix
        self.env = {**os.environ, "ENVPLANE_HOME": str(self.base / "home"), "NO_COLOR": "1"}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [ENVPLANE, "-f", str(self.matrix), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"envplane {' '.join(args)} failed:\n{done.stderr}")
        return done

    def frontend(self) -> str:
        info = json.loads(self.run("info", "staging", "-o", "json").stdout)
        return str(info["endpoints"]["frontend"])

    def close(self) -> None:
        subprocess.run(
            [ENVPLANE, "-f", str(self.matrix), "destroy", "staging", "--force"],
            env=self.env,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def nginx_master(project: Project) -> int:
    pid_file = project.base / "home" / "environments" / "staging" / "run" / "nginx.pid"
    return int(pid_file.read_text().strip())


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def raw_reload(master: int) -> float:
    """kill -HUP nginx and wait until its old workers are gone: the raw switch."""
    old = children(master)
    started = time.monotonic()
    os.kill(master, signal.SIGHUP)
    while True:
        now = children(master)
        if not (old & now) and now - old:
            return time.monotonic() - started
        time.sleep(0.005)


def raw_two_replicas(servers: dict[str, str], *, one_at_a_time: bool) -> float:
    """Start 2 backend replicas by hand against the environment's own PostgreSQL and Redis
    and poll each one's /health until it passes (the check envplane waits for): both at once,
    or one at a time as a rolling update goes."""
    ports = [free_port(), free_port()]
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(EXAMPLE / "app" / "backend.py")],
                    env={**os.environ, **servers, "PORT": str(port), "VERSION": "1.1.0"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            if one_at_a_time:
                wait_for(partial(_healthy, port))
        for port in ports:
            wait_for(partial(_healthy, port))
        return time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def servers_of(project: Project) -> dict[str, str]:
    """The backend's settings for staging's PostgreSQL and Redis (from `info --show-secrets`)."""
    info = json.loads(project.run("info", "staging", "--show-secrets", "-o", "json").stdout)
    pg = urllib.parse.urlsplit(info["endpoints"]["postgres"])
    rd = urllib.parse.urlsplit(info["endpoints"]["redis"])
    return {
        "DATABASE_HOST": "127.0.0.1",
        "DATABASE_PORT": str(pg.port),
        "DATABASE_USER": urllib.parse.unquote(pg.username or ""),
        "DATABASE_PASSWORD": urllib.parse.unquote(pg.password or ""),
        "DATABASE_NAME": pg.path.lstrip("/"),
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(rd.port),
        "REDIS_PASSWORD": urllib.parse.unquote(rd.password or ""),
    }


def _healthy(port: int) -> bool:
    try:
        return http_ok(f"http://127.0.0.1:{port}/health")
    except Exception:
        return False


def _traffic(url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
        except Exception:
            pass
        time.sleep(0.02)


def fig(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    project = Project()
    switch, rollback, rolling, raw_switch, raw_start, raw_serial = [], [], [], [], [], []
    try:
        project.run("create", "staging")
        servers = servers_of(project)
        versions = ["1.1.0", "1.0.0"]
        for i in range(rounds):
            rel = project.run("release", "create", "--service", f"backend={versions[i % 2]}")
            started = time.monotonic()
            project.run("deploy", "staging", rel.stdout.strip())
            rolling.append(time.monotonic() - started)
            raw_start.append(raw_two_replicas(servers, one_at_a_time=False))
            raw_serial.append(raw_two_replicas(servers, one_at_a_time=True))
        url = project.frontend() + "api/info"
        stop = threading.Event()
        # Blue-green's post-promotion analysis judges real traffic: ~50 requests/s meanwhile.
        traffic = threading.Thread(target=_traffic, args=(url, stop), daemon=True)
        traffic.start()
        for _ in range(rounds):
            version = versions[rounds % 2]  # not the one running (each rollback returns)
            rel = project.run("release", "create", "--service", f"backend={version}")
            done = project.run(
                "deploy", "staging", rel.stdout.strip(), "--strategy", "blue_green", "-o", "json"
            )
            switch.append(json.loads(done.stdout)["detail"]["switch_seconds"])
            back = project.run("rollback", "staging", "-o", "json")
            rollback.append(json.loads(back.stdout)["detail"]["switch_seconds"])
            raw_switch.append(raw_reload(nginx_master(project)))
        stop.set()
    finally:
        project.close()
    print(f"rounds: {rounds}")
    print(f"blue-green switch (to every old worker gone): {fig(switch)}   bar <= 0.5s")
    print(f"rollback within the scale-down delay (switch only): {fig(rollback)}   bar <= 0.5s")
    print(f"raw nginx reload (kill -HUP, old workers gone): {fig(raw_switch)}")
    print(
        f"  switch / raw reload: {statistics.median(switch) / statistics.median(raw_switch):.2f}x"
    )
    print(f"rolling deploy, 1 service x 2 replicas: {fig(rolling)}")
    print(f"raw: start + /health-check 2 replicas by hand, both at once: {fig(raw_start)}")
    print(f"raw: the same one at a time (as a rolling update goes): {fig(raw_serial)}")
    for name, raw in (("both at once", raw_start), ("one at a time", raw_serial)):
        ratio = statistics.median(rolling) / statistics.median(raw)
        print(f"  rolling / raw {name}: {ratio:.2f}x   bar <= 2x")


if __name__ == "__main__":
    main()
