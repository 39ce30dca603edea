"""Drift of supervised programs: whether each runs, and whether it runs the arguments and
environment the driver would launch it with (its launch spec, and for the app's services the
live process itself, read from /proc)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envplane.targets.base import DriftItem
from envplane.targets.local import programs
from envplane.targets.local.envctx import LocalEnv

MASK = "***"
# Variables whose values are secrets even when the spec does not say so.
SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|^KEY$|CREDENTIAL", re.IGNORECASE)


def state(env: LocalEnv, key: str, name: str) -> DriftItem | None:
    """The program not RUNNING (stopped, killed and not restarted, crash-looping)."""
    info = programs.info(env, name)
    if info is None:
        return DriftItem(key, f"program {name}", "running", "missing")
    problem = programs.trouble(env, name, info)
    if problem is None:
        return None
    return DriftItem(key, f"program {name}", "running", problem.split(";")[0])


def _shown(var: str, value: str | None, secret: set[str]) -> str:
    if value is None:
        return "(unset)"
    return MASK if var in secret or SECRET_NAME_RE.search(var) else value


def _env_items(
    key: str,
    label: str,
    expected: Mapping[str, str],
    actual: Mapping[str, str],
    secret: set[str],
    changed_by: str | None = None,
) -> list[DriftItem]:
    return [
        DriftItem(
            key,
            f"{label} env.{var}",
            _shown(var, expected.get(var), secret),
            _shown(var, actual.get(var), secret),
            changed_by,
        )
        for var in sorted(set(expected) | set(actual))
        if expected.get(var) != actual.get(var)
    ]


def _read_spec(env: LocalEnv, name: str) -> dict[str, Any] | None:
    try:
        found = json.loads((env.layout.programs / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def launch(
    env: LocalEnv, key: str, program: programs.Program, secret: Iterable[str] = ()
) -> list[DriftItem]:
    """The launch spec on disk (what supervisord starts) against the driver's for `program`."""
    want = json.loads(programs.launch_spec(env, program))
    have = _read_spec(env, program.name)
    label = f"program {program.name}"
    if have is None:
        return [DriftItem(key, f"{label} launch spec", "present", "missing or unreadable")]
    items = []
    for field in ("argv", "cwd"):
        if have.get(field) != want[field]:
            items.append(
                DriftItem(key, f"{label} {field}", _arg(want[field]), _arg(have.get(field)))
            )
    have_env = have.get("env") if isinstance(have.get("env"), dict) else {}
    items += _env_items(key, label, want["env"], _strs(have_env), set(secret), "launch spec edited")
    return items


def _arg(value: Any) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _strs(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def live(
    env: LocalEnv, key: str, program: programs.Program, secret: Iterable[str] = ()
) -> list[DriftItem]:
    """The running process's own arguments and environment (/proc) against the driver's
    launch of `program`: a process started by hand, or from a spec since put back."""
    info = programs.info(env, program.name)
    if info is None or info.get("statename") != programs.RUNNING or not info.get("pid"):
        return []
    pid = int(info["pid"])
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        raw_env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []  # it exited meanwhile, or this user may not read it
    want = json.loads(programs.launch_spec(env, program))
    label = f"program {program.name} (pid {pid})"
    items = []
    running = [a.decode(errors="replace") for a in argv]
    if running != want["argv"]:
        items.append(DriftItem(key, f"{label} argv", _arg(want["argv"]), _arg(running)))
    actual = dict(
        entry.decode(errors="replace").partition("=")[::2] for entry in raw_env if b"=" in entry
    )
    return items + _env_items(key, label, want["env"], actual, set(secret), "started by hand")
