"""envplane cost over 1,000 generated environments (target <= 1 s).

The matrix: the Sunday example's three environments turned into templates, and 1,000
environments extending them, each with its own node group size and instance type. Prints, for
N rounds, the median of: `envplane cost -o json` as a user runs it (wall and CPU time,
interpreter start, matrix load and the state store included), once just after the matrix was
edited (nothing cached) and once more on the unchanged file (its validated copy is read from
ENVPLANE_HOME, matrix/cache.py); the same in one process split into loading the matrix, loading
its validated copy, and pricing every environment; both commands again through a warm server
of the bench's own (`envplane warm start`, docs/warm.md); and the figures' ratio to the 1 s
target.
Usage: python benchmarks/bench_cost.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchkit
import matrixgen

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
COUNT = 1000
TYPES = ("t3.medium", "m5.large", "c5.xlarge", "r5.large", "m6i.large")
TARGET = 1.0


def generated(count: int) -> str:
    """The Sunday environments as templates, `count` environments extending them."""

    def environment(i: int, template: str) -> list[str]:
        return [
            f"  env-{i:04d}:",
            f"    extends: {template}",
            "    clusters:",
            f"      - name: bench-{i:04d}",
            "        region: us-east-1",
            "        node_groups:",
            "          - name: general",
            f"            instance_type: {TYPES[i % len(TYPES)]}",
            "            min_size: 1",
            "            max_size: 10",
            f"            desired_size: {1 + i % 10}",
        ]

    return matrixgen.generated(count, environment)


def _cost(matrix: Path, env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    """`envplane cost -o json` as a user runs it: wall time, CPU time (user + system), report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = subprocess.run(
        [ENVPLANE, "-f", str(matrix), "cost", "-o", "json"], capture_output=True, text=True, env=env
    )
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"cost failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(done.stdout)


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-cost-"))
    server: benchkit.WarmServer | None = None
    try:
        root = base / "project"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
        matrix = root / "config" / "environment-matrix.yaml"
        env = dict(os.environ, ENVPLANE_HOME=str(base / "home"), NO_COLOR="1", ENVPLANE_WARM="0")
        server = benchkit.WarmServer(base, env)
        through_server = [ENVPLANE, "-f", str(matrix), "cost", "-o", "json"]
        edited_warm: list[tuple[float, float]] = []
        unchanged_warm: list[tuple[float, float]] = []
        script = (
            "import sys,time\n"
            "t=time.monotonic()\n"
            "from pathlib import Path\n"
            "from envplane.matrix import load_matrix\n"
            "from envplane.cost import estimate, load_table\n"
            "m=load_matrix(sys.argv[1]); t1=time.monotonic()\n"
            "load_matrix(sys.argv[1], cache_dir=Path(sys.argv[2])); t1=time.monotonic()\n"
            "load_matrix(sys.argv[1], cache_dir=Path(sys.argv[2])); t2=time.monotonic()\n"
            "table=load_table(None)\n"
            "e=[estimate(m, n, prices=table) for n in m.environments]; t3=time.monotonic()\n"
            "print(t1-t, t2-t1, t3-t2, len(e), sum(x.monthly for x in e))"
        )
        colds: list[tuple[float, float]] = []
        warms: list[tuple[float, float]] = []
        loads: list[float] = []
        hits: list[float] = []
        prices: list[float] = []
        starts: list[float] = []
        total = ""
        text = generated(COUNT)
        for round_ in range(rounds):
            t0 = time.monotonic()
            subprocess.run([ENVPLANE, "--help"], capture_output=True, env=env, check=True)
            starts.append(time.monotonic() - t0)
            # Cold: the matrix was just edited, so no validated copy of it is cached; warm: the
            # same command again on the unchanged file, as a user's second run is.
            matrix.write_text(text + f"# round {round_}\n")
            for runs in (colds, warms):
                wall, cpu, report = _cost(matrix, env)
                runs.append((wall, cpu))
                assert len(report["environments"]) == COUNT, len(report["environments"])
                total = report["monthly"]
            matrix.write_text(text + f"# round {round_}, through the warm server\n")
            for warm_runs in (edited_warm, unchanged_warm):
                warm_runs.append(server.timed(through_server))
            split = subprocess.run(
                [sys.executable, "-c", script, str(matrix), str(base / "split-cache")],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            load_s, hit_s, price_s, n, _sum = split.stdout.split()
            assert int(n) == COUNT
            loads.append(float(load_s))
            hits.append(float(hit_s))
            prices.append(float(price_s))
        cold, cold_cpu = (statistics.median(x) for x in zip(*colds, strict=True))
        warm, warm_cpu = (statistics.median(x) for x in zip(*warms, strict=True))
        load, hit, price, start = (statistics.median(x) for x in (loads, hits, prices, starts))
        print(f"environments: {COUNT}, rounds: {rounds}, total ${float(total):,.0f}/month")
        edited_w, edited_c = (statistics.median(x) for x in zip(*edited_warm, strict=True))
        same_w, same_c = (statistics.median(x) for x in zip(*unchanged_warm, strict=True))
        for label, w, c in (
            ("matrix unchanged", warm, warm_cpu),
            ("matrix just edited", cold, cold_cpu),
            ("unchanged, warm", same_w, same_c),
            ("just edited, warm", edited_w, edited_c),
        ):
            print(
                f"envplane cost -o json, {label + ':':20} {w:.3f} s wall, {c:.3f} s CPU"
                f"  ({w / TARGET:.2f} x target)"
            )
        print(f"  of it: envplane --help (start-up)    {start:.3f} s")
        print(f"  in one process: load the matrix      {load:.3f} s (from the file, with imports)")
        print(f"  in one process: load it again        {hit:.3f} s (its validated copy)")
        print(
            f"  in one process: price every env      {price:.3f} s  ({price / COUNT * 1e6:.0f} us each)"
        )
        print(
            f"target: <= {TARGET:.1f} s for the command: unchanged matrix "
            f"{'met' if warm <= TARGET else 'NOT met'}, just edited {'met' if cold <= TARGET else 'NOT met'}"
        )
        print(
            f"target through a warm server: unchanged {'met' if same_w <= TARGET else 'NOT met'}, "
            f"just edited {'met' if edited_w <= TARGET else 'NOT met'}"
        )
        print(
            f"pricing alone: {price:.3f} s ({price / TARGET:.2f} x target); load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
