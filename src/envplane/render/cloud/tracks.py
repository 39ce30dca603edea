"""A matrix service's workload objects by the environment's delivery strategy.

    rolling     <svc>-deployment, RollingUpdate (maxSurge 1, maxUnavailable 0)
    recreate    <svc>-deployment, Recreate
    blue_green  <svc>-blue and <svc>-green (pod label envplane.io/color), the idle color at
                replicas 0; the active Service <svc>-service selects the live color,
                <svc>-preview the other one
    canary      <svc> (track stable) and <svc>-canary (track canary, replicas 0), the Service
                <svc>-canary selecting the canary track; the weight is exact through an
                ingress-nginx canary Ingress where the environment has an Ingress, else it is
                the canary's share of the replicas

The active Service keeps the name `<svc>-service` whatever the strategy: the config templates
reach a service as `http://<svc>-service:80`. An environment has an Ingress when its matrix
variables name an ingress class (`INGRESS_CLASS`): each service gets Ingress `<svc>` for host
`<svc>.<env>.<DOMAIN>` to its active Service. Images carry the version running as their tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envplane.errors import BadInput
from envplane.render.cloud.names import labels
from envplane.render.cloud.workloads import Workload, deployment, service

COLOR_LABEL = "envplane.io/color"
TRACK_LABEL = "envplane.io/track"
INGRESS_CLASS_VARIABLE = "INGRESS_CLASS"
INGRESS_NAMESPACE = "ingress-nginx"  # where the ingress-nginx controller runs (its chart's)
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
COLORS = ("blue", "green")
# Docker's tag grammar: a version with '+' (semver build metadata) is no image tag.
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class TrackNames:
    """The objects one service's strategy renders, by role."""

    strategy: str
    active_service: str
    deployments: dict[str, str]  # color or track ("main" for rolling/recreate) -> Deployment
    preview_service: str | None = None
    canary_service: str | None = None
    ingress: str | None = None
    canary_ingress: str | None = None


@dataclass
class TrackObjects:
    services: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    ingresses: list[dict[str, Any]] = field(default_factory=list)


def names(svc: str, strategy: str, *, ingress: bool) -> TrackNames:
    active = f"{svc}-service"
    ing = svc if ingress else None
    if strategy == "blue_green":
        deps = {c: f"{svc}-{c}" for c in COLORS}
        return TrackNames(strategy, active, deps, preview_service=f"{svc}-preview", ingress=ing)
    if strategy == "canary":
        return TrackNames(
            strategy,
            active,
            {"stable": svc, "canary": f"{svc}-canary"},
            canary_service=f"{svc}-canary",
            ingress=ing,
            canary_ingress=f"{svc}-canary" if ingress else None,
        )
    return TrackNames(strategy, active, {"main": f"{svc}-deployment"}, ingress=ing)


def image_for(image: str, version: str | None) -> str:
    """`image` with `version` as its tag (a digest dropped: it would pin another build);
    unchanged when the service has no version of its own."""
    if version is None or version == "unversioned":
        return image
    if not set(version) <= _TAG_CHARS:
        raise BadInput(
            f"version {version!r} cannot be an image tag (letters, digits, '_', '.', '-')",
            hint="the cloud target runs each version as the image tagged with it",
        )
    repo = image.split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}:{version}" if head else f"{last}:{version}"


def canary_split(weight: int, replicas: int) -> tuple[int, int] | None:
    """(canary, stable) replicas for `weight` per cent without an Ingress, the total kept at
    `replicas`; None when no split comes near it (no canary replica, or no stable one left
    below 100 %)."""
    if weight >= 100:
        return replicas, 0
    canary = (weight * replicas + 50) // 100  # nearest, halves up (no banker's rounding)
    if canary < 1 or canary >= replicas:
        return None
    return canary, replicas - canary


def unrepresentable(weights: list[int], replicas: int) -> int | None:
    """The first weight that replicas alone cannot approximate, else None."""
    return next((w for w in weights if canary_split(w, replicas) is None), None)


def ingress(
    ns: str,
    name: str,
    *,
    host: str,
    to_service: str,
    ingress_class: str,
    project: str,
    env: str,
    component: str,
    weight: int | None = None,
) -> dict[str, Any]:
    """An Ingress for `host` to `to_service`; with `weight`, the ingress-nginx canary Ingress
    of the same host (the share of its requests the canary Service gets)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "labels": labels(project, env, component),
    }
    if weight is not None:
        meta["annotations"] = {CANARY_ANNOTATION: "true", WEIGHT_ANNOTATION: str(weight)}
    backend = {"service": {"name": to_service, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {
            "ingressClassName": ingress_class,
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def track_objects(
    ns: str,
    w: Workload,
    *,
    strategy: str,
    color: str,
    project: str,
    env: str,
    env_from: list[str],
    ingress_class: str | None,
    domain: str,
) -> TrackObjects:
    """The Services, Deployments and Ingresses of one service running on `color` (the live
    one; blue-green's other color and a canary are rendered idle, at replicas 0)."""
    n = names(w.name, strategy, ingress=ingress_class is not None)
    out = TrackObjects()

    def svc(name: str | None, track: dict[str, str] | None) -> None:
        out.services.append(service(ns, w, project=project, env=env, name=name, track=track))

    def dep(key: str, replicas: int, track: dict[str, str]) -> None:
        out.deployments.append(
            deployment(
                ns,
                w,
                project=project,
                env=env,
                recreate=False,
                env_from=env_from,
                name=n.deployments[key],
                replicas=replicas,
                track=track,
            )
        )

    if strategy == "blue_green":
        idle = COLORS[1 - COLORS.index(color)]
        svc(None, {COLOR_LABEL: color})
        svc(n.preview_service, {COLOR_LABEL: idle})
        for c in COLORS:
            dep(c, w.replicas if c == color else 0, {COLOR_LABEL: c})
    elif strategy == "canary":
        # Through an Ingress the stable Service must not reach the canary: the weight is the
        # canary Ingress's. Without one, one Service over both tracks splits by replicas.
        svc(None, {TRACK_LABEL: "stable"} if ingress_class else None)
        svc(n.canary_service, {TRACK_LABEL: "canary"})
        dep("stable", w.replicas, {TRACK_LABEL: "stable"})
        dep("canary", 0, {TRACK_LABEL: "canary"})
    else:
        svc(None, None)
        out.deployments.append(
            deployment(
                ns, w, project=project, env=env, recreate=strategy == "recreate", env_from=env_from
            )
        )
    if ingress_class is not None and n.ingress is not None:
        host = f"{w.name}.{env}.{domain}"

        def ing(name: str, to: str, weight: int | None) -> None:
            out.ingresses.append(
                ingress(
                    ns,
                    name,
                    host=host,
                    to_service=to,
                    ingress_class=ingress_class,
                    project=project,
                    env=env,
                    component=w.name,
                    weight=weight,
                )
            )

        ing(n.ingress, n.active_service, None)
        if n.canary_ingress is not None and n.canary_service is not None:
            ing(n.canary_ingress, n.canary_service, 0)
    return out
