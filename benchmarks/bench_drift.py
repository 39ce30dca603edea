"""envplane drift of a local environment, against interpreter start and a store-only command.

Creates `development` of the Sunday example in a fresh ENVPLANE_HOME, then times N rounds of:
`python -c pass` (interpreter start), `envplane --version` (the CLI's own start), `envplane
history development` (a command that opens the state store and nothing else) and `envplane
drift development` (every program, file, PostgreSQL setting and Redis parameter compared), and
once more with drift in it (a CONFIG SET); the same three through a warm server of the bench's
own (`envplane warm start`, with an XDG_RUNTIME_DIR in the bench's directory; its children's
CPU is read from the server's reaped-children times, so a warm row's CPU is the client's and
the command's); and the library call `drift_report` in one process after its imports, on a
workspace opened by a first call (the comparison alone). Prints medians and drift's figure
beyond interpreter start, cold and warm, against the bar of 0.5 s. Destroys the environment
and stops the warm server at the end.
Usage: python benchmarks/bench_drift.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import benchkit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
BIN = Path(sys.executable).parent
ENVPLANE = str(BIN / "envplane")
BAR = 0.5


def median(
    argv: list[str],
    env: dict[str, str],
    rounds: int,
    ok: tuple[int, ...] = (0,),
    warm: benchkit.WarmServer | None = None,
) -> tuple[float, float]:
    if warm is None:
        runs = [benchkit.timed(argv, env, ok) for _ in range(rounds)]
    else:
        runs = [warm.timed(argv, ok) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


IN_PROCESS = """
import json, resource, statistics, sys, time
from envplane.consistency.drift import drift_report
from envplane.workspace import Workspace


def cpu_time():  # this process and what it ran (supervisorctl, say)
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


ws = Workspace.from_matrix(sys.argv[1])
began, cpu = time.perf_counter(), cpu_time()
drift_report(ws, "development")  # opens the store and the matrix
first = (time.perf_counter() - began, cpu_time() - cpu)
runs = []
for _ in range(int(sys.argv[2])):
    began, cpu = time.perf_counter(), cpu_time()
    drift_report(ws, "development")
    runs.append((time.perf_counter() - began, cpu_time() - cpu))
print(json.dumps({"first": first, "median": [statistics.median(r[i] for r in runs)
                                             for i in (0, 1)]}))
"""


def in_process(matrix: Path, env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """The library call's figures, timed inside one interpreter: the first call on a new
    workspace, and the median of `rounds` more on it (CPU: the process's and its children's)."""
    argv = [sys.executable, "-c", IN_PROCESS, str(matrix), str(rounds)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    import json

    return dict(json.loads(out))


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-drift-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    env = {**os.environ, "ENVPLANE_HOME": str(base / "home"), "NO_COLOR": "1", "ENVPLANE_WARM": "0"}
    cli = [ENVPLANE, "-f", str(root / "config" / "environment-matrix.yaml")]
    warm: benchkit.WarmServer | None = None
    try:
        subprocess.run([*cli, "create", "development"], env=env, check=True, capture_output=True)
        benchkit.timed([*cli, "drift", "development"], env)  # warm the page cache once
        start = median([sys.executable, "-c", "pass"], env, rounds)
        version = median([ENVPLANE, "--version"], env, rounds)
        history = median([*cli, "history", "development"], env, rounds)
        clean = median([*cli, "drift", "development"], env, rounds)
        library = in_process(root / "config" / "environment-matrix.yaml", env, rounds)
        warm = benchkit.WarmServer(base, env)
        warm.timed([*cli, "drift", "development"])  # its first child: the page cache again
        warm_version = median([ENVPLANE, "--version"], env, rounds, warm=warm)
        warm_history = median([*cli, "history", "development"], env, rounds, warm=warm)
        warm_clean = median([*cli, "drift", "development"], env, rounds, warm=warm)
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
        if warm is not None:
            warm.stop()
        subprocess.run([*cli, "destroy", "development", "--force"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    load, cores = os.getloadavg()[0], os.cpu_count()
    print(f"rounds: {rounds} (medians; wall s / CPU s); load average {load:.1f} on {cores} cores")
    rows = [
        ("python -c pass", start, ""),
        ("envplane --version", version, ""),
        ("envplane history development", history, "opens the state store only"),
        ("envplane drift development", clean, "no drift, exit 0"),
        ("envplane drift development", drifted, "one CONFIG SET, exit 1"),
        ("envplane --version (warm)", warm_version, "through the warm server"),
        ("envplane history development (warm)", warm_history, "through the warm server"),
        ("envplane drift development (warm)", warm_clean, "through the warm server, exit 0"),
    ]
    first, again = library["first"], library["median"]
    rows += [
        ("drift_report (in process)", (first[0], first[1]), "first call: opens store, matrix"),
        ("drift_report (in process)", (again[0], again[1]), "workspace open: the comparison"),
    ]
    for label, (wall, cpu), note in rows:
        print(f"{label:38} {wall:6.3f} / {cpu:6.3f}  {note}")
    for how, figure in (("cold", clean), ("warm", warm_clean)):
        for what, index in (("wall", 0), ("CPU", 1)):
            beyond = figure[index] - start[index]
            verdict = "met" if beyond <= BAR else "NOT met"
            print(
                f"drift beyond interpreter start, {how} ({what}): {beyond:6.3f} s "
                f"(bar {BAR} s: {verdict})"
            )
    for what, index in (("wall", 0), ("CPU", 1)):
        print(f"drift beyond `history`, cold ({what}): {clean[index] - history[index]:6.3f} s")


if __name__ == "__main__":
    main()
