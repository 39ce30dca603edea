"""The dashboard's first page (the environments list) ready in headless Chromium.

A private copy of the Sunday example with development created for real (the list asks its
target how its services are; staging and production are listed as not created, priced from
the matrix), served by a real `envplane serve`. For ROUNDS rounds a new tab navigates to
/ui/ until `load` and the table's rows are present (the figure the 1 s budget is for), with
the browser's own Navigation Timing of the same loads, then one tab navigated again. Also printed: the
server's own time for the page (an HTTP GET with the same session cookie) and for the API's
`GET /environments`, to show what of the page's time is the server's.

Debian's Chromium (`/usr/bin/chromium`) through Playwright; nothing is downloaded.
Usage: python benchmarks/bench_dashboard.py [ROUNDS]
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import benchkit
import httpx

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
CHROMIUM = "/usr/bin/chromium"
BUDGET = 1.0  # seconds
NAVIGATION_TIMING = """() => { const t = performance.getEntriesByType("navigation")[0];
  return [t.responseEnd, t.domContentLoadedEventEnd, t.loadEventEnd]; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(base: Path, *args: str, stdin: str = "") -> str:
    env = dict(os.environ, ENVPLANE_HOME=str(base / "home"), NO_COLOR="1")
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = base / "sunday" / "config" / "environment-matrix.yaml"
    done = subprocess.run(
        [ENVPLANE, "-f", str(matrix), *args], env=env, input=stdin, capture_output=True,
        text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"envplane {' '.join(args)} failed: {done.stderr}")
    return done.stdout + done.stderr


@contextlib.contextmanager
def serve(base: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = dict(os.environ, ENVPLANE_HOME=str(base / "home"), NO_COLOR="1")
    env.pop("ENVPLANE_DATABASE_URL", None)
    matrix = base / "sunday" / "config" / "environment-matrix.yaml"
    log = (base / "serve.log").open("wb")
    process = subprocess.Popen(
        [ENVPLANE, "-f", str(matrix), "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((base / "serve.log").read_text())
            time.sleep(0.2)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:<44} median {statistics.median(ordered) * 1000:7.1f} ms   "
        f"p95 {p95 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    benchkit.compile_envplane()
    from playwright.sync_api import sync_playwright

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make system` installs Debian's chromium")
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-dash-", dir="/tmp"))
    base.chmod(0o755)
    shutil.copytree(EXAMPLE, base / "sunday", ignore=shutil.ignore_patterns(".envplane"))
    try:
        run(base, "create", "development")
        made = run(base, "token", "create", "--name", "bench", "--role", "viewer")
        found = re.search(r"ept_[A-Za-z0-9_-]+", made)
        assert found, made
        token = found.group(0)
        with serve(base) as (url, _process), sync_playwright() as p:
            began = time.perf_counter()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            launch = time.perf_counter() - began
            context = browser.new_context(base_url=url)
            signin = context.request.post("/session", data={"token": token})
            assert signin.ok, signin.text()
            cookie = {c["name"]: c["value"] for c in context.cookies()}
            page_ready: list[float] = []
            timing: list[list[float]] = []
            for _ in range(rounds):
                page = context.new_page()
                began = time.perf_counter()
                page.goto("/ui/", wait_until="load")
                page.wait_for_selector("#envs tbody tr[data-env]")
                page_ready.append(time.perf_counter() - began)
                # The browser's own account: the HTML's last byte, DOMContentLoaded, load.
                timing.append(page.evaluate(NAVIGATION_TIMING))
                page.close()
            same_tab: list[float] = []  # one tab navigated again: no new renderer process
            page = context.new_page()
            for _ in range(rounds):
                began = time.perf_counter()
                page.goto("/ui/", wait_until="load")
                page.wait_for_selector("#envs tbody tr[data-env]")
                same_tab.append(time.perf_counter() - began)
            browser.close()
            server_page: list[float] = []
            api_list: list[float] = []
            with httpx.Client(base_url=url, cookies=cookie) as client:
                for _ in range(rounds):
                    began = time.perf_counter()
                    assert client.get("/ui/").status_code == 200
                    server_page.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    assert client.get("/environments").status_code == 200
                    api_list.append(time.perf_counter() - began)
        load1, load5, _ = os.getloadavg()
        print(f"dashboard first page, {rounds} rounds; load average {load1:.2f} / {load5:.2f} "
              f"on {os.cpu_count()} cores; Chromium started in {launch:.2f}s (not counted)")  # fmt: skip
        print(summary("/ui/ ready in Chromium (load + table)", page_ready))
        for i, label in enumerate(("  of which: HTML received", "  of which: DOMContentLoaded",
                                   "  of which: load event ended")):  # fmt: skip
            print(summary(label, [t[i] / 1000 for t in timing]))
        print(summary("/ui/ ready again in the same tab", same_tab))
        print(summary("/ui/ HTML from the server (HTTP GET)", server_page))
        print(summary("GET /environments (the API's list)", api_list))
        worst = max(page_ready)
        print(f"budget {BUDGET:.1f} s: median {statistics.median(page_ready) / BUDGET:.2f} of it, "
              f"worst {worst / BUDGET:.2f} of it -> {'within' if worst <= BUDGET else 'OVER'}")  # fmt: skip
    finally:
        with contextlib.suppress(SystemExit):
            run(base, "destroy", "development", "--force")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
