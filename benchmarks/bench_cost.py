"""envplane cost over 1,000 generated environments (target <= 1 s).

The matrix: the Sunday example's three environments turned into templates, and 1,000
environments extending them, each with its own node group size and instance type. Prints, for
N rounds, the median of: `envplane cost -o json` as a user runs it (wall time, interpreter
start, matrix load and the state store included), the same in one process split into loading
the matrix and pricing every environment, and the figures' ratio to the 1 s target.
Usage: python benchmarks/bench_cost.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
COUNT = 1000
TEMPLATE_OF = ("development", "staging", "production")
TYPES = ("t3.medium", "m5.large", "c5.xlarge", "r5.large", "m6i.large")
TARGET = 1.0


def generated(count: int) -> str:
    """The Sunday environments as templates, `count` environments extending them."""
    seed = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()
    head, _, rest = seed.partition("\ndeployment_strategies:")
    body = head.replace("environments:\n", "templates:\n", 1)
    for name in TEMPLATE_OF:
        body = body.replace(f"\n  {name}:\n", f"\n  {name}:\n    template: {name}\n", 1)
    tail = rest.split("# envplane additions", 1)[1]
    tail = tail.split("\nparity:", 1)[0].split("\n# Which differences", 1)[0]
    tail = tail.split("\n# Per-branch previews", 1)[0].split("\npreviews:", 1)[0]
    lines = [body, "environments:"]
    for i in range(count):
        lines += [
            f"  env-{i:04d}:",
            f"    extends: {TEMPLATE_OF[i % 3]}",
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
    return "\n".join(lines) + "\n# envplane additions" + tail


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-cost-"))
    try:
        root = base / "project"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
        matrix = root / "config" / "environment-matrix.yaml"
        matrix.write_text(generated(COUNT))
        env = dict(os.environ, ENVPLANE_HOME=str(base / "home"), NO_COLOR="1")
        script = (
            "import sys,time\n"
            "t=time.monotonic()\n"
            "from envplane.matrix import load_matrix\n"
            "from envplane.cost import estimate, load_table\n"
            "m=load_matrix(sys.argv[1]); t1=time.monotonic()\n"
            "table=load_table(None)\n"
            "e=[estimate(m, n, prices=table) for n in m.environments]; t2=time.monotonic()\n"
            "print(t1-t, t2-t1, len(e), sum(x.monthly for x in e))"
        )
        walls, loads, prices, starts = [], [], [], []
        total = ""
        for _ in range(rounds):
            t0 = time.monotonic()
            subprocess.run([ENVPLANE, "--help"], capture_output=True, env=env, check=True)
            starts.append(time.monotonic() - t0)
            t0 = time.monotonic()
            done = subprocess.run(
                [ENVPLANE, "-f", str(matrix), "cost", "-o", "json"],
                capture_output=True,
                text=True,
                env=env,
            )
            walls.append(time.monotonic() - t0)
            if done.returncode != 0:
                raise SystemExit(f"cost failed: {done.stderr}")
            report = json.loads(done.stdout)
            assert len(report["environments"]) == COUNT, len(report["environments"])
            total = report["monthly"]
            split = subprocess.run(
                [sys.executable, "-c", script, str(matrix)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            load, price, n, _sum = split.stdout.split()
            assert int(n) == COUNT
            loads.append(float(load))
            prices.append(float(price))
        wall, load, price, start = (statistics.median(x) for x in (walls, loads, prices, starts))
        print(f"environments: {COUNT}, rounds: {rounds}, total ${float(total):,.0f}/month")
        print(
            f"envplane cost -o json (wall, median):  {wall:.3f} s  ({wall / TARGET:.2f} x target)"
        )
        print(f"  of it: envplane --help (start-up)    {start:.3f} s")
        print(f"  in one process: load the matrix      {load:.3f} s")
        print(
            f"  in one process: price every env      {price:.3f} s  ({price / COUNT * 1e6:.0f} us each)"
        )
        print(
            f"target: <= {TARGET:.1f} s for the command: {'met' if wall <= TARGET else 'NOT met'}"
        )
        print(
            f"pricing alone: {price:.3f} s ({price / TARGET:.2f} x target); load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
