"""Delivery on the local target against doing the same by hand, in one run.

On a real staging environment of the Sunday example (2 backend replicas behind nginx):

- blue-green: from the switch to all traffic on the new color (the deploy's `switch_seconds`,
  measured until every old nginx worker exited), and a rollback within the scale-down delay
  (a switch only), against a raw `kill -HUP` of nginx waited on the same way;
- rolling: a deploy of the one service with 2 replicas against starting and health-checking
  2 replicas of the backend by hand (the raw tool: the process and an HTTP poll).

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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def raw_two_replicas() -> float:
    """Start 2 backend replicas by hand and poll each one's /health until it answers."""
    ports = [free_port(), free_port()]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLE / "app" / "backend.py")],
            env={**os.environ, "PORT": str(p), "VERSION": "1.1.0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        for port in ports:
            wait_for(lambda port=port: _answers(port))
        return time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def _answers(port: int) -> bool:
    """The replica serves HTTP: a route that needs no database (no PostgreSQL is started by
    hand here; envplane's own check is its /health against the environment's servers)."""
    try:
        return http_ok(f"http://127.0.0.1:{port}/no-such-route")
    except Exception as exc:  # 404 is an answer
        return "HTTP Error 404" in str(exc)


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
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    project = Project()
    switch, rollback, rolling, raw_switch, raw_start = [], [], [], [], []
    try:
        project.run("create", "staging")
        versions = ["1.1.0", "1.0.0"]
        for i in range(rounds):
            rel = project.run("release", "create", "--service", f"backend={versions[i % 2]}")
            started = time.monotonic()
            project.run("deploy", "staging", rel.stdout.strip())
            rolling.append(time.monotonic() - started)
            raw_start.append(raw_two_replicas())
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
    print(f"raw: start + health-check 2 replicas by hand: {fig(raw_start)}")
    ratio = statistics.median(rolling) / statistics.median(raw_start)
    print(f"  rolling / raw: {ratio:.2f}x   bar <= 2x")


if __name__ == "__main__":
    main()
