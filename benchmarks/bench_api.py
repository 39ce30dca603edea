"""The REST API: `GET /environments` with 1,000 recorded environments, and the server's memory.

Records 1,000 environments in a fresh store directly (not by creating them), starts a real
`envplane serve` on a free loopback port, and prints: the server's resident memory at rest
(after start-up, and again after the requests), then the latency of N sequential
`GET /environments` requests from one keep-alive client (median, p90, p99, max), of the
same with an environment changed before each request (the listing made anew, not kept), and,
for scale, of `GET /healthz` (the floor: HTTP and authentication without the listing).
Targets (issue 14): p99 <= 50 ms, memory at rest <= 120 MB.
Usage: python benchmarks/bench_api.py [REQUESTS]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchkit
import httpx

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
ENVIRONMENTS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def record(home: Path) -> str:
    from envplane.service.identities import create_token
    from envplane.state.store import StateStore

    with StateStore.open(f"sqlite:///{home / 'state.db'}", home) as store:
        for i in range(ENVIRONMENTS):
            name = f"bench-{i:04d}"
            store.save_environment(name, target="local", status="ready", ports={"web": 20000 + i})
        _record, token = create_token(store, "bench", "viewer")
    return token


def timed(client: httpx.Client, path: str, n: int, before: object = None) -> list[float]:
    out = []
    for _ in range(n):
        if callable(before):
            before()  # not timed
        began = time.perf_counter()
        answer = client.get(path)
        out.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
    return out


def show(label: str, ms: list[float]) -> float:
    ordered = sorted(ms)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    print(
        f"{label:32} median {statistics.median(ms):6.1f} ms  p90 {p90:6.1f} ms  "
        f"p99 {p99:6.1f} ms  max {ordered[-1]:6.1f} ms  (n={len(ms)})"
    )
    return p99


def main() -> None:
    benchkit.compile_envplane()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-api-"))
    root, home = base / "sunday", base / "home"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    home.mkdir()
    token = record(home)
    port = free_port()
    env = {**os.environ, "ENVPLANE_HOME": str(home)}
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = root / "config" / "environment-matrix.yaml"
    log = (base / "serve.log").open("wb")
    server = subprocess.Popen(
        [ENVPLANE, "-f", str(matrix), "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
            if server.poll() is not None:
                raise SystemExit((base / "serve.log").read_text())
        print(f"server ready in {time.monotonic() - began:.2f}s")
        time.sleep(1)
        rest = rss_mb(server.pid)
        print(f"memory at rest (RSS)             {rest:6.1f} MB  (target <= 120 MB)")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            listed = client.get("/environments").json()
            print(f"GET /environments lists {len(listed)} environments, "
                  f"{len(client.get('/environments').content) / 1024:.0f} KiB")  # fmt: skip
            timed(client, "/environments", 20)  # warm-up
            p99 = show("GET /environments", timed(client, "/environments", n))
            show("GET /healthz (floor)", timed(client, "/healthz", n))
            from envplane.state.store import StateStore

            with StateStore.open(f"sqlite:///{home / 'state.db'}", home) as store:

                def touch() -> None:  # an environment changed: the listing is made again
                    store.save_environment("bench-0000", status="ready")

                show("GET /environments, changed", timed(client, "/environments", n // 3, touch))
        after = rss_mb(server.pid)
        print(f"memory after the requests (RSS)  {after:6.1f} MB")
        print(f"p99 / target: {p99 / 50:.2f}   memory at rest / target: {rest / 120:.2f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
