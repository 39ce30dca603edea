"""The local target's data operations (the DataTarget protocol): PostgreSQL, Redis, objects."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envplane.errors import BadInput
from envplane.matrix.models import DataRules
from envplane.render.model import Resource
from envplane.targets.base import EnvContext
from envplane.targets.datacaps import ExportFormat, MaskingPlan, Sink, Unpacker
from envplane.targets.local import programs, supd
from envplane.targets.local.data import masking, objects, pgdata, pgmask, redisdata
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.failures import plain_errors

REDIS_FORMAT = "rdb"
STORAGE_FORMAT = "tar"


def _unsupported(res: Resource) -> BadInput:
    return BadInput(f"resource {res.key} holds no data the local target can move")


class LocalData:
    name = "local"
    masks_copies = True  # a staged cluster copy is masked by a private server (pgmask.py)

    def export_data(
        self, ctx: EnvContext, resource: Resource, sink: Sink, *, logical: bool = False
    ) -> ExportFormat:
        env = LocalEnv.of(ctx)
        with plain_errors(resource, "exporting"):
            if resource.kind == "postgres":
                return pgdata.export(env, resource, sink, logical=logical)
            if resource.kind == "redis":
                redisdata.export(env, resource, sink)
                return ExportFormat(REDIS_FORMAT)
            if resource.kind == "storage":
                objects.export(env, sink)
                return ExportFormat(STORAGE_FORMAT)
            raise _unsupported(resource)

    def check_import(self, kind: str, export: ExportFormat) -> None:
        if kind == "postgres":
            pgdata.check_import(export)
            return
        wanted = {"redis": REDIS_FORMAT, "storage": STORAGE_FORMAT}.get(kind)
        if wanted is None or export.format not in (wanted, ""):
            raise BadInput(f"cannot restore {kind} data of format {export.format!r}")

    def unpacker(self, ctx: EnvContext, kind: str, export: ExportFormat) -> Unpacker | None:
        if kind == "postgres" and export.format == pgdata.PHYSICAL:
            return pgdata.ClusterUnpacker(LocalEnv.of(ctx))
        return None

    def import_data(
        self, ctx: EnvContext, resource: Resource, source: Path, export: ExportFormat
    ) -> None:
        env = LocalEnv.of(ctx)
        with plain_errors(resource, "importing"):
            if resource.kind == "postgres":
                pgdata.import_(env, resource, source, export)
            elif resource.kind == "redis":
                redisdata.import_(env, resource, source)
            elif resource.kind == "storage":
                objects.import_(env, source)
            else:
                raise _unsupported(resource)

    def prepare_copy(self, src: EnvContext, src_resource: Resource, dst: EnvContext) -> Any:
        """A copy of the source's data staged beside the environments, where dst's own will
        be (the same file system: adopting it is a rename)."""
        source, target = LocalEnv.of(src), LocalEnv.of(dst)
        with plain_errors(src_resource, "copying"):
            if src_resource.kind == "postgres":
                return pgdata.prepare(source, src_resource, target)
            if src_resource.kind == "redis":
                return redisdata.prepare(source, src_resource, target)
            if src_resource.kind == "storage":
                return objects.prepare(source, target)
        raise _unsupported(src_resource)

    def mask_copy(
        self, prepared: Any, plan: MaskingPlan, salt: str, progress: Callable[[str], None]
    ) -> list[str]:
        if not isinstance(prepared, pgdata.ClusterCopy):
            raise BadInput("only a staged PostgreSQL copy can be masked before it is adopted")
        with plain_errors(Resource("postgres", "postgres", {}), "masking the copy of"):
            return pgmask.mask_staged(
                prepared.user, prepared.path, prepared.database, plan, salt, progress
            )

    def discard_copy(self, prepared: Any) -> None:
        path = prepared.path if isinstance(prepared, pgdata.ClusterCopy) else prepared
        if isinstance(path, Path):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def copy_data(
        self,
        src: EnvContext,
        src_resource: Resource,
        dst: EnvContext,
        dst_resource: Resource,
        prepared: Any = None,
    ) -> None:
        source, target = LocalEnv.of(src), LocalEnv.of(dst)
        with plain_errors(dst_resource, "copying"):
            if dst_resource.kind == "postgres":
                staged = prepared if isinstance(prepared, pgdata.ClusterCopy) else None
                pgdata.copy(source, src_resource, target, dst_resource, staged)
            elif dst_resource.kind == "redis":
                dump = prepared if isinstance(prepared, Path) else None
                redisdata.copy(source, src_resource, target, dst_resource, dump)
            elif dst_resource.kind == "storage":
                tree = prepared if isinstance(prepared, Path) else None
                objects.copy(source, target, tree)
            else:
                raise _unsupported(dst_resource)

    def data_facts(self, ctx: EnvContext, resource: Resource) -> dict[str, int]:
        env = LocalEnv.of(ctx)
        with plain_errors(resource, "measuring"):
            if resource.kind == "postgres":
                return pgdata.facts(env, resource)
            if resource.kind == "redis":
                return redisdata.facts(env, resource)
            if resource.kind == "storage":
                return objects.facts(env)
        raise _unsupported(resource)

    def rows_changed(self, ctx: EnvContext, resource: Resource) -> dict[str, int] | None:
        if resource.kind != "postgres":
            return None
        with plain_errors(resource, "counting writes"):
            return pgdata.rows_changed(LocalEnv.of(ctx), resource)

    def stop_services(self, ctx: EnvContext) -> list[str]:
        env = LocalEnv.of(ctx)
        if not supd.answering(env.layout):
            return []
        stopped = []
        for proc in supd.client(env.layout).supervisor.getAllProcessInfo():
            name = str(proc["name"])
            if name.startswith(("svc-", "green-")):  # replicas of either color
                programs.stop(env, name)
                stopped.append(name)
        return stopped

    def check_masking(
        self, ctx: EnvContext, resource: Resource, rules: DataRules, source_env: str
    ) -> MaskingPlan:
        if resource.kind != "postgres":
            raise _unsupported(resource)
        return masking.check(LocalEnv.of(ctx), resource, rules, source_env)

    def apply_masking(
        self,
        ctx: EnvContext,
        resource: Resource,
        plan: MaskingPlan,
        salt: str,
        progress: Callable[[str], None],
    ) -> list[str]:
        if resource.kind != "postgres":
            raise _unsupported(resource)
        return masking.apply(LocalEnv.of(ctx), resource, plan, salt, progress)


def seed_resource(env: LocalEnv, resource: Resource, token: Any) -> None:
    """Put a prepared copy (prepare_copy's token) in place of a resource about to be created,
    so that creating it starts it with the copied data (LocalTarget.apply, under a clone)."""
    env.ctx.progress(f"{resource.key}: created from the copied data")
    if resource.kind == "postgres" and isinstance(token, pgdata.ClusterCopy):
        pgdata.seed(env, resource, token)
    elif resource.kind == "redis" and isinstance(token, Path):
        redisdata.seed(env, token)
    elif resource.kind == "storage" and isinstance(token, Path):
        objects.seed(env, token)
    else:
        raise _unsupported(resource)


__all__ = ["LocalData", "seed_resource"]
