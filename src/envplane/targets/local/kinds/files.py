"""Kinds "storage" (the object-storage directory) and "config" (the app's rendered config files)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from envplane.errors import BadInput
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.specs import spec_bool, spec_str_map

PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STORAGE_META = "storage.json"


# -- storage -------------------------------------------------------------------------------


def storage_apply(env: LocalEnv, action: Action, res: Resource) -> None:
    versioning = spec_bool(res.spec, "versioning", res.key)
    root = env.layout.storage
    root.mkdir(exist_ok=True, mode=0o750)
    env.user.own(root)
    # Settings sit beside the bucket, not inside it, so they never show up as objects.
    meta = json.dumps({"versioning": versioning}, sort_keys=True)
    atomic_write(env.layout.etc / STORAGE_META, meta, mode=0o640, user=env.user)


def storage_observe(env: LocalEnv, res: Resource) -> Observed:
    root = env.layout.storage
    if not root.is_dir():
        return Observed(False, False, f"{root} does not exist")
    try:
        meta = json.loads((env.layout.etc / STORAGE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    wanted = spec_bool(res.spec, "versioning", res.key)
    if meta.get("versioning") != wanted:
        return Observed(True, False, f"versioning is {meta.get('versioning')}, wanted {wanted}")
    return Observed(True, True, info={"path": str(root), "versioning": wanted})


def storage_delete(env: LocalEnv, res: Resource) -> None:
    shutil.rmtree(env.layout.storage, ignore_errors=True)
    (env.layout.etc / STORAGE_META).unlink(missing_ok=True)


# -- config --------------------------------------------------------------------------------


def _wanted(res: Resource) -> dict[Path, str]:
    files = spec_str_map(res.spec, "files", res.key)
    wanted: dict[Path, str] = {}
    for rel, content in files.items():
        parts = rel.split("/")
        if len(parts) != 2 or not all(PART_RE.fullmatch(p) for p in parts):
            raise BadInput(
                f"resource {res.key}: config file name {rel!r} must be '<configmap>/<key>' "
                "made of letters, digits, '.', '_' and '-'",
            )
        wanted[Path(*parts)] = content
    return wanted


def _present(root: Path) -> dict[Path, Path]:
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root): p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def config_apply(env: LocalEnv, action: Action, res: Resource) -> None:
    root = env.layout.config
    wanted = _wanted(res)
    root.mkdir(exist_ok=True, mode=0o750)
    env.user.own(root)
    for rel, content in wanted.items():
        folder = root / rel.parent
        folder.mkdir(exist_ok=True, mode=0o750)
        env.user.own(folder)
        atomic_write(root / rel, content, mode=0o640, user=env.user)
    for rel, path in _present(root).items():
        if rel not in wanted:
            path.unlink()
    for folder in root.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def config_observe(env: LocalEnv, res: Resource) -> Observed:
    root = env.layout.config
    if not root.is_dir():
        return Observed(False, False, f"{root} does not exist")
    wanted = _wanted(res)
    present = _present(root)
    drift = sorted(str(rel) for rel in wanted if rel not in present)
    drift += sorted(str(rel) for rel in present if rel not in wanted)
    drift += sorted(
        str(rel)
        for rel, content in wanted.items()
        if rel in present and present[rel].read_text(encoding="utf-8", errors="replace") != content
    )
    if drift:
        return Observed(True, False, "differs from the spec: " + ", ".join(drift))
    return Observed(True, True, info={"path": str(root), "files": len(wanted)})


def config_delete(env: LocalEnv, res: Resource) -> None:
    root = env.layout.config
    shutil.rmtree(root, ignore_errors=True)
