"""envplane parity over 200 generated environments (target <= 1 s).

The matrix: the Sunday example's three environments turned into templates, and 200 environments
extending them (each its own replicas, node group size, VPC range and a variable), with the
Sunday config templates rendered for each. Prints, for N rounds, the median of:
`envplane parity -o json` as a user runs it (wall time, interpreter start included), the
same in one process split into loading the matrix and the comparison itself, and the report's
size. Usage: python benchmarks/bench_parity.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchkit
import matrixgen

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
COUNT = 200


def generated(count: int) -> str:
    """The Sunday environments as templates, `count` environments extending them."""

    def environment(i: int, template: str) -> list[str]:
        return [
            f"  env-{i:03d}:",
            f"    extends: {template}",
            "    services:",
            "      backend:",
            f"        replicas: {1 + i % 4}",
            "    variables:",
            f'      ANALYTICS_ID: "UA-{i % 7}"',
        ]

    return matrixgen.generated(count, environment)


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base = Path(tempfile.mkdtemp(prefix="envplane-bench-parity-"))
    try:
        root = base / "project"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
        matrix = root / "config" / "environment-matrix.yaml"
        matrix.write_text(generated(COUNT))
        env = dict(os.environ, ENVPLANE_HOME=str(base / "home"), NO_COLOR="1")
        walls, helps, loads, compares = [], [], [], []
        size = 0
        script = (
            "import sys,time\n"
            "t=time.monotonic()\n"
            "from envplane.matrix import load_matrix\n"
            "from envplane.consistency.parity import parity\n"
            "m=load_matrix(sys.argv[1]); t1=time.monotonic()\n"
            "r=parity(m, list(m.environments)); t2=time.monotonic()\n"
            "print(t1-t, t2-t1, len(r.rows))"
        )
        for _ in range(rounds):
            t0 = time.monotonic()
            done = subprocess.run(
                [ENVPLANE, "-f", str(matrix), "parity", "-o", "json"],
                capture_output=True,
                text=True,
                env=env,
            )
            walls.append(time.monotonic() - t0)
            t0 = time.monotonic()
            subprocess.run([ENVPLANE, "--help"], capture_output=True, env=env, check=True)
            helps.append(time.monotonic() - t0)
            if done.returncode not in (0, 1):
                raise SystemExit(f"parity failed: {done.stderr}")
            size = len(done.stdout)
            split = subprocess.run(
                [sys.executable, "-c", script, str(matrix)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout.split()
            loads.append(float(split[0]))
            compares.append(float(split[1]))
        wall = statistics.median(walls)
        print(f"parity of {COUNT} environments (-o json, {size // 1024} KiB of JSON):")
        print(
            f"  envplane parity, wall incl. interpreter start  median {wall:.3f}s (target <= 1 s)"
        )
        print(
            f"  of which: import + load the matrix             median {statistics.median(loads):.3f}s"
        )
        print(
            f"            flatten, render, compare             median {statistics.median(compares):.3f}s"
        )
        print(
            f"  envplane --help (interpreter start + CLI)      median {statistics.median(helps):.3f}s"
        )
        load = os.getloadavg()[0]
        print(
            f"  machine load average (1 min) while measuring   {load:.2f} on {os.cpu_count()} CPUs"
        )
        print(f"  ratio to the target                            {wall / 1.0:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
