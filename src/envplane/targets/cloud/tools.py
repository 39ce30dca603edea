"""External programs the cloud target drives (terraform/tofu, helm): found on PATH, run with
an argument list (never a shell), their environment given explicitly."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from envplane.errors import OperationFailed, ToolMissing

TERRAFORM_ENV = "ENVPLANE_TERRAFORM"
HELM_ENV = "ENVPLANE_HELM"


def find_program(names: Sequence[str], override_env: str, what: str, hint: str) -> str:
    """The first of `names` on PATH, or the program ENVPLANE_* names; ToolMissing otherwise."""
    override = os.environ.get(override_env)
    candidates = [override] if override else list(names)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    wanted = " or ".join(repr(n) for n in candidates)
    raise ToolMissing(
        f"{what}: neither {wanted} is on PATH"
        if len(candidates) > 1
        else f"{what}: {wanted} is not on PATH (or not executable)",
        hint=hint,
    )


def find_terraform() -> str:
    return find_program(
        ("terraform", "tofu"),
        TERRAFORM_ENV,
        "the cloud target needs Terraform or OpenTofu",
        f"install terraform (>= 1.5) or tofu, or point {TERRAFORM_ENV} at one",
    )


def find_helm() -> str:
    return find_program(
        ("helm",),
        HELM_ENV,
        "the cloud target installs monitoring with Helm",
        f"install helm 3, or point {HELM_ENV} at it",
    )


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 12) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


def run(argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], timeout: float) -> Result:
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise OperationFailed(
            f"{Path(argv[0]).name} {argv[1]} did not finish within {timeout:.0f}s"
        ) from None
    except OSError as exc:
        raise OperationFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    return Result(done.returncode, done.stdout, done.stderr)


@contextmanager
def streaming(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> Iterator[tuple[Iterator[str], Callable[[], Result]]]:
    """Run a program and read its stdout line by line as it prints (Terraform's -json events);
    the second item waits for it and returns the whole result."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    except OSError as exc:
        raise OperationFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    seen: list[str] = []
    errors: list[str] = []
    # stderr is drained aside so that a chatty program never blocks on a full pipe.
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr or ()), daemon=True)
    drain.start()

    def lines() -> Iterator[str]:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            yield line

    def finish() -> Result:
        rest = proc.stdout.read() if proc.stdout else ""
        seen.append(rest)
        proc.wait()
        drain.join()
        return Result(proc.returncode, "".join(seen), "".join(errors))

    try:
        yield lines(), finish
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
