"""CloudTarget: Terraform/OpenTofu, the Kubernetes API and Helm, for the three resources that
render/cloud produces. The engine knows nothing of them; this module dispatches by kind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from envplane.errors import BadInput, EnvplaneError
from envplane.render.cloud.names import DB_USER
from envplane.render.model import DesiredEnvironment, Resource
from envplane.render.variables import database_name
from envplane.targets.base import (
    Action,
    DriftItem,
    Endpoint,
    EnvContext,
    Observed,
    Orphaned,
    Problem,
    ServiceStatus,
)
from envplane.targets.cloud import apps, aws, drift, infra, monitoring, tools
from envplane.targets.cloud import orphans as cloud_orphans
from envplane.targets.cloud.terraform import Terraform

Spec = Mapping[str, Any]
HANDLERS: dict[str, ModuleType] = {
    "terraform": infra,
    "kubernetes": apps,
    "helm": monitoring,
}


def _handler(res: Resource) -> ModuleType:
    try:
        return HANDLERS[res.kind]
    except KeyError:
        raise BadInput(
            f"resource {res.key}: the cloud target has no resource kind {res.kind!r}",
            hint=f"known kinds: {', '.join(sorted(HANDLERS))}",
        ) from None


def _initialised(ctx: EnvContext) -> bool:
    return (infra.workdir(ctx) / ".terraform").is_dir()


def _spec(desired: DesiredEnvironment, kind: str) -> Spec | None:
    for res in desired.resources:
        if res.kind == kind:
            return res.spec
    return None


class CloudTarget:
    name = "cloud"

    def check(self, desired: DesiredEnvironment, env_dir: Path) -> list[Problem]:
        """The matrix's cloud rules are checked, located, when the environment is rendered for
        the cloud (render/cloud/checks.py). What remains offline: Terraform's working
        directory will be created under ENVPLANE_HOME, by this user."""
        existing = env_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if os.access(existing, os.W_OK | os.X_OK):
            return []
        return [
            Problem(
                f"ENVPLANE_HOME {env_dir.parent.parent}: {existing} is not writable by this "
                "user, who keeps the environment's Terraform working directory there",
                "set ENVPLANE_HOME to a directory you can write to",
            )
        ]

    def preflight(self, desired: DesiredEnvironment) -> None:
        kinds = {r.kind for r in desired.resources}
        if "terraform" in kinds:
            tools.find_terraform()
        if "helm" in kinds:
            tools.find_helm()

    def observe(self, ctx: EnvContext, resource: Resource) -> Observed:
        observe: Callable[[EnvContext, Spec], Observed] = _handler(resource).observe
        seen = observe(ctx, resource.spec)
        # Fields changed behind envplane's back make a healthy resource unhealthy to the
        # planner, so `update` applies it again (drift.py compares, as `envplane drift` does).
        return drift.observed(ctx, resource, seen) if seen.exists and seen.healthy else seen

    def apply(self, ctx: EnvContext, action: Action, resource: Resource) -> None:
        if resource.kind == "kubernetes":
            drift.take_back(ctx, resource)  # only when repairing drift observe reported
        _handler(resource).apply(ctx, resource.spec)

    def delete(self, ctx: EnvContext, resource: Resource) -> None:
        _handler(resource).delete(ctx, resource.spec)

    def teardown(self, ctx: EnvContext) -> None:
        """Remove the environment's directory, unless Terraform still manages something there
        (then it stays, and `leftovers` lists what)."""
        if not ctx.env_dir.exists():
            return
        if _initialised(ctx) and Terraform(infra.workdir(ctx), ctx.progress).state_list():
            return
        shutil.rmtree(ctx.env_dir)

    def leftovers(self, ctx: EnvContext, recorded_ports: Mapping[str, int]) -> list[str]:
        if not ctx.env_dir.exists():
            return []
        left = [f"directory {ctx.env_dir} still exists"]
        if _initialised(ctx):
            try:
                tf = Terraform(infra.workdir(ctx), ctx.progress)
                left += [f"terraform still manages {address}" for address in tf.state_list()]
            except EnvplaneError as exc:
                left.append(f"the Terraform state could not be read: {exc}")
        return left

    def endpoints(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[Endpoint]:
        """From Terraform's outputs (passwords masked: they live in Secrets Manager) and the
        public Service's load balancer."""
        if _spec(desired, "terraform") is None:
            return []
        values = infra.outputs(ctx)
        out: list[Endpoint] = []
        if values.get("cluster_endpoint"):
            out.append(Endpoint("kubernetes", str(values["cluster_endpoint"])))
        if values.get("rds_address"):
            db = database_name(ctx.project, ctx.name)
            url = f"postgresql://{DB_USER}:***@{values['rds_address']}:5432/{db}?sslmode=require"
            out.append(Endpoint("postgres", url))
        if values.get("redis_address"):
            out.append(Endpoint("redis", f"rediss://:***@{values['redis_address']}:6379"))
        if values.get("storage_bucket"):
            out.append(Endpoint("storage", f"s3://{values['storage_bucket']}"))
        kube = _spec(desired, "kubernetes")
        if kube is not None:
            host = apps.public_address(ctx, kube)
            if host:
                out.append(Endpoint("frontend", f"http://{host}"))
        return out

    def services(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[ServiceStatus]:
        kube = _spec(desired, "kubernetes")
        return [] if kube is None else apps.services(ctx, kube)

    def platform(self, ctx: EnvContext, desired: DesiredEnvironment) -> str | None:
        """The seed's `get_environment_info` cluster line: `aws eks describe-cluster`."""
        kube = _spec(desired, "kubernetes")
        if kube is None or not kube.get("cluster"):
            return None
        cluster = kube["cluster"]
        found = aws.eks_cluster(str(cluster["region"]), str(cluster["name"]))
        if found is None:
            return f"EKS cluster {cluster['name']} ({cluster['region']}): not found"
        version = f", Kubernetes {found.version}" if found.version else ""
        return f"EKS cluster {found.name} ({cluster['region']}): {found.status}{version}"

    def drift(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[DriftItem]:
        """`terraform plan -detailed-exitcode` and the live objects against a server-side
        apply dry run of the rendered ones (targets/cloud/drift.py); changes nothing."""
        return drift.cloud_drift(ctx, desired)

    # OrphanTarget: `gc --orphans` (targets/cloud/orphans.py).
    def orphans(
        self, home: Path, live: set[str], clusters: list[tuple[str, str]]
    ) -> list[Orphaned]:
        return cloud_orphans.find(home, live, clusters)

    def remove_orphan(
        self, orphan: Orphaned, home: Path, clusters: list[tuple[str, str]]
    ) -> list[str]:
        return cloud_orphans.remove(orphan, home, clusters)
