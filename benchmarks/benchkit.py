"""What every benchmark does first, and how the benchmarks time a whole envplane command, cold
or through a warm server of their own."""

from __future__ import annotations

import compileall
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from envplane.cli import warmclient

SRC = Path(__file__).resolve().parents[1] / "src" / "envplane"
ENVPLANE = str(Path(sys.executable).parent / "envplane")


def compile_envplane() -> None:
    """Compile envplane's modules as installing it does (pip writes the bytecode of a wheel):
    with PYTHONDONTWRITEBYTECODE set, or after an edit, every command would otherwise compile
    each edited module from source again, 0.3-0.5 s of CPU that no installed envplane spends."""
    compileall.compile_dir(SRC, quiet=1)


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


class WarmServer:
    """A warm server of the benchmark's own: its socket under `base`, so it neither meets nor
    disturbs one the user runs. The command a warm run is timed for runs in the server's
    child, not under this process: its CPU is the server's reaped-children time."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        self.env = {**env, "XDG_RUNTIME_DIR": str(runtime), "ENVPLANE_WARM": "1"}
        cold = {**self.env, "ENVPLANE_WARM": "0"}
        started = [ENVPLANE, "warm", "start", "--idle", "10m"]
        subprocess.run(started, env=cold, check=True, capture_output=True)
        out = subprocess.run(
            [ENVPLANE, "warm", "status", "-o", "json"], env=cold, check=True, capture_output=True
        ).stdout
        doc = json.loads(out)
        self.pid, self.path = int(doc["pid"]), Path(doc["socket"])

    def served(self) -> int:
        doc = warmclient.request({"status": True}, self.path)
        if doc is None:
            raise SystemExit("the warm server is gone (an edit of envplane's code makes it stale)")
        return int(doc["served"])

    def children_cpu(self) -> float:
        """CPU seconds of the commands the server ran and reaped, once none is running."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = warmclient.request({"status": True}, self.path)
            if doc is not None and doc["running_commands"] == 0:
                break
            time.sleep(0.005)
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime

    def timed(self, argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
        before, served = self.children_cpu(), self.served()
        seconds, cpu = timed(argv, self.env, ok)
        if self.served() != served + 1:
            raise SystemExit(f"{' '.join(argv)} did not go through the warm server")
        return seconds, cpu + self.children_cpu() - before

    def stop(self) -> None:
        cold = {**self.env, "ENVPLANE_WARM": "0"}
        subprocess.run([ENVPLANE, "warm", "stop"], env=cold, capture_output=True, check=False)
