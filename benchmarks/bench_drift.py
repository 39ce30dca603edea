"""envplane drift of a local environment, against interpreter start and a store-only command.

Creates `development` of the Sunday example in a fresh ENVPLANE_HOME, then times N rounds of:
`python -c pass` (interpreter start), `envplane --version` (the CLI's own start), `envplane
history development` (a command that opens the state store and nothing else) and `envplane
drift development` (every program, file, PostgreSQL setting and Redis parameter compared), and
once more with drift in it (a CONFIG SET). Prints medians and drift's figure beyond interpreter
start, against the bar of 0.5 s. Destroys the environment at the end.
Usage: python benchmarks/bench_drift.py [ROUNDS]
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
BIN = Path(sys.executable).parent
ENVPLANE = str(BIN / "envplane")
BAR = 0.5


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command itself): on a shared, loaded machine the
    CPU figure is the steadier one (waiting for a core is not the command's cost)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def median(
    argv: list[str], env: dict[str, str], rounds: int, ok: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    runs = [timed(argv, env, ok) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-drift-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    env = {**os.environ, "ENVPLANE_HOME": str(base / "home"), "NO_COLOR": "1"}
    cli = [ENVPLANE, "-f", str(root / "config" / "environment-matrix.yaml")]
    try:
        subprocess.run([*cli, "create", "development"], env=env, check=True, capture_output=True)
        timed([*cli, "drift", "development"], env)  # warm the page cache once
        start = median([sys.executable, "-c", "pass"], env, rounds)
        version = median([ENVPLANE, "--version"], env, rounds)
        history = median([*cli, "history", "development"], env, rounds)
        clean = median([*cli, "drift", "development"], env, rounds)
        info = subprocess.run(
            [*cli, "info", "development", "--show-secrets", "-o", "json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        import json

        url = json.loads(info.stdout)["endpoints"]["redis"]
        import redis

        with redis.Redis.from_url(url) as client:
            client.config_set("maxmemory-policy", "allkeys-lru")
        drifted = median([*cli, "drift", "development"], env, rounds, ok=(1,))
    finally:
        subprocess.run([*cli, "destroy", "development", "--force"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    print(f"rounds: {rounds} (medians; wall s / CPU s)")
    rows = [
        ("python -c pass", start, ""),
        ("envplane --version", version, ""),
        ("envplane history development", history, "opens the state store only"),
        ("envplane drift development", clean, "no drift, exit 0"),
        ("envplane drift development", drifted, "one CONFIG SET, exit 1"),
    ]
    for label, (wall, cpu), note in rows:
        print(f"{label:32} {wall:6.3f} / {cpu:6.3f}  {note}")
    for what, index in (("wall", 0), ("CPU", 1)):
        beyond = clean[index] - start[index]
        verdict = "met" if beyond <= BAR else "NOT met"
        print(f"drift beyond interpreter start ({what}): {beyond:6.3f} s (bar {BAR} s: {verdict})")
        print(f"drift beyond `history` ({what}):         {clean[index] - history[index]:6.3f} s")


if __name__ == "__main__":
    main()
