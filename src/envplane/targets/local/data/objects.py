"""Stored objects of a local environment (the storage directory): a tar stream out, a checked
tar in, a directory copy between environments. Every change is made aside and swapped in."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from envplane.errors import OperationFailed
from envplane.targets.datacaps import Sink
from envplane.targets.local.envctx import LocalEnv


class _Writer:
    """tarfile's stream mode wants a file object with write(); the sink is one."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        return len(data)


def export(env: LocalEnv, sink: Sink) -> None:
    root = env.layout.storage
    with tarfile.open(fileobj=_Writer(sink), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    continue  # only plain objects are data; links could point anywhere
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
        raise OperationFailed(f"refusing object archive member {member.name!r}")


def import_(env: LocalEnv, source: Path) -> None:
    root = env.layout.storage
    aside = root.with_name(f".{root.name}.new")
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(mode=0o750)
    with tarfile.open(source, mode="r:") as tar:
        for member in tar:
            _check_member(member)
            target = aside / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True, mode=0o750)
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            extracted = tar.extractfile(member)
            assert extracted is not None
            with extracted, open(target, "wb") as out:
                shutil.copyfileobj(extracted, out, 1 << 20)
            os.chmod(target, 0o640)
    _swap(env, aside)


def _copy_tree(src: LocalEnv, into: Path) -> None:
    shutil.rmtree(into, ignore_errors=True)
    if src.layout.storage.is_dir():
        shutil.copytree(src.layout.storage, into, symlinks=False, ignore_dangling_symlinks=True)
    else:
        into.mkdir(mode=0o750)


def prepare(src: LocalEnv, dst: LocalEnv) -> Path:
    """The source's objects copied beside the environments, for dst to adopt."""
    staged = dst.layout.staged("storage-copy")
    staged.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    _copy_tree(src, staged)
    return staged


def seed(env: LocalEnv, tree: Path) -> None:
    _swap(env, tree)


def copy(src: LocalEnv, dst: LocalEnv, tree: Path | None = None) -> None:
    if tree is not None and tree.is_dir():
        _swap(dst, tree)
        return
    root = dst.layout.storage
    aside = root.with_name(f".{root.name}.new")
    _copy_tree(src, aside)
    _swap(dst, aside)
    shutil.rmtree(dst.layout.staged("storage-copy"), ignore_errors=True)  # an unused early copy


def _swap(env: LocalEnv, aside: Path) -> None:
    root = env.layout.storage
    env.user.own_tree(aside)
    os.chmod(aside, 0o750)  # noqa: S103 - the run user and its group, as layout.ensure does
    old = root.with_name(f".{root.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        os.replace(root, old)
    os.replace(aside, root)
    shutil.rmtree(old, ignore_errors=True)


def facts(env: LocalEnv) -> dict[str, int]:
    root = env.layout.storage
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    return {"objects": len(files), "bytes": sum(p.stat().st_size for p in files)}
