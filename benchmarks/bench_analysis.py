"""The CPU a canary's traffic analysis costs (envplane.delivery.analysis), in one run.

Writes a realistic nginx access log in the envplane_json format: 500 requests/s for 60 s
(30,000 lines; two upstream ports, the stable one taking 80 % of the traffic and the canary 20 %;
~1 % of the requests retried on the other port after a 502, ~5 % static files nginx answers
itself, a long-tailed latency). The log is appended 2 s at a time and analysed as a rollout does
it: every 2 s read the new lines since the last offset, summarize per port, judge each port.
Twice: judging only the last 2 s, and judging everything since the canary started (the window
grows to all 30,000 lines: the dearer way). CPU time (time.process_time) is counted for the
analysis only, never for writing the log. The raw baseline: the same new lines every 2 s, read
and parsed with plain `json.loads` per line and nothing else.

Prints CPU seconds per second of log (= the share of one core at 500 requests/s) against the
bar "< 5 % of one core", and the ratio to the raw baseline. Usage:
python benchmarks/bench_analysis.py [ROUNDS]
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import benchkit

from envplane.delivery.analysis import Hit, Thresholds, judge, read_hits, summarize

RATE = 500  # requests per second
SECONDS = 60
EVERY = 2  # seconds between two analyses
STABLE, CANARY = 41001, 41002
URIS = ("/api/info", "/api/items", "/api/smoke", "/api/version", "/api/items?page=2")
STATICS = ("/", "/index.html", "/app.js", "/style.css", "/favicon.ico")


def log_lines(seed: int = 1) -> list[bytes]:
    """RATE * SECONDS lines, exactly as nginx writes them with the envplane_json log_format."""
    rng = random.Random(seed)
    lines = []
    start = 1_767_000_000.0
    for i in range(RATE * SECONDS):
        t = start + i / RATE + rng.random() / RATE
        took = min(rng.lognormvariate(-4.6, 0.6), 3.0)  # median ~10 ms, a tail to a few 100 ms
        if rng.random() < 0.05:
            uri, addr, status, times, code = rng.choice(STATICS), "", "", "", 200
        else:
            uri = rng.choice(URIS)
            port = CANARY if rng.random() < 0.2 else STABLE
            code = 500 if rng.random() < 0.002 else 200
            if rng.random() < 0.01:
                other = STABLE if port == CANARY else CANARY
                addr = f"127.0.0.1:{port}, 127.0.0.1:{other}"
                status, times = f"502, {code}", f"0.000, {took:.3f}"
            else:
                addr, status, times = f"127.0.0.1:{port}", str(code), f"{took:.3f}"
        request_time = took + 0.0005 if addr else 0.0
        lines.append(
            (
                f'{{"t":{t:.3f},"status":{code},"upstream":"{addr}",'
                f'"upstream_status":"{status}","upstream_time":"{times}",'
                f'"request_time":{request_time:.3f},"uri":"{uri}"}}\n'
            ).encode()
        )
    return lines


def analysed(path: Path, cumulative: bool) -> Callable[[], None]:
    offset = 0
    window: list[Hit] = []
    limits = Thresholds()

    def step() -> None:
        nonlocal offset, window
        chunk = read_hits(path, offset)
        offset = chunk.offset
        if cumulative:
            window.extend(chunk.hits)
        else:
            window = chunk.hits
        for port in (STABLE, CANARY):
            judge(summarize(window, [port]), limits)

    return step


def raw(path: Path) -> Callable[[], None]:
    offset = 0

    def step() -> None:
        nonlocal offset
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        offset += end
        for line in data[:end].splitlines():
            json.loads(line)

    return step


def cpu_of(lines: list[bytes], base: Path, make: Callable[[Path], Callable[[], None]]) -> float:
    """CPU seconds of one analysis of the whole log, appended and analysed EVERY seconds."""
    path = base / "access.log"
    path.unlink(missing_ok=True)
    path.touch()
    step = make(path)
    per = RATE * EVERY
    spent = 0.0
    with open(path, "ab", buffering=0) as log:
        for first in range(0, len(lines), per):
            log.write(b"".join(lines[first : first + per]))
            started = time.process_time()
            step()
            spent += time.process_time() - started
    return spent


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    lines = log_lines()
    size = sum(map(len, lines))
    print(
        f"log: {len(lines):,} lines, {size / 1e6:.1f} MB: {RATE} requests/s for {SECONDS} s, "
        f"analysed every {EVERY} s ({SECONDS // EVERY} reads)"
    )
    kinds: dict[str, Callable[[Path], Callable[[], None]]] = {
        "analysis, window = the last 2 s": lambda p: analysed(p, cumulative=False),
        "analysis, window = since the start": lambda p: analysed(p, cumulative=True),
        "raw: json.loads per line": raw,
    }
    times: dict[str, list[float]] = {name: [] for name in kinds}
    with tempfile.TemporaryDirectory(prefix="envplane-bench-") as tmp:
        for n in range(1, rounds + 1):
            print(f"round {n}")
            for name, make in kinds.items():
                spent = cpu_of(lines, Path(tmp), make)
                times[name].append(spent)
                print(f"  {name:36} {spent * 1000:7.1f} ms CPU", flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    print("\nmedians: CPU seconds per second of log = share of one core at 500 requests/s")
    for name, spent in med.items():
        per_line = spent / len(lines) * 1e6
        print(
            f"  {name:36} {spent / SECONDS * 100:6.3f} % of one core   "
            f"({spent * 1000:.1f} ms for {SECONDS} s of log, {per_line:.2f} us a line)"
        )
    worst = max(med[n] for n in kinds if n.startswith("analysis")) / SECONDS * 100
    verdict = "met" if worst < 5 else "NOT met"
    print(f"\nbar: < 5 % of one core; the dearer analysis takes {worst:.3f} %: {verdict}")
    base = med["raw: json.loads per line"]
    print("ratios to the raw baseline (json.loads per line, nothing else)")
    for name in kinds:
        if name.startswith("analysis"):
            print(f"  {name:36} {med[name] / base:5.2f}x")


if __name__ == "__main__":
    main()
