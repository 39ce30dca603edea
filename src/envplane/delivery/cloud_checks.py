"""What CloudRollout checks: the plans the cloud refuses before any step, and one traffic
check of a new version on ingress-nginx's metrics, judged as the local access log is
(analysis.judge: success rate, p99, fewer than min_requests is inconclusive)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from envplane.delivery import analysis
from envplane.errors import BadInput
from envplane.render.cloud.tracks import INGRESS_CLASS_VARIABLE, unrepresentable

if TYPE_CHECKING:
    from envplane.delivery.documents import DeployPlan, ServiceMove
    from envplane.matrix.models import Analysis, DeploymentStrategy
    from envplane.targets.cloud.delivery import PrometheusSource

POLL = 0.25


def refuse_plan(
    plan: DeployPlan, settings: DeploymentStrategy, *, primary: str, ingress: bool
) -> None:
    """BadInput (exit 2) for what the cloud cannot do with `plan`, before anything moves."""
    env = plan.environment
    if plan.strategy != primary:
        raise BadInput(
            f"{env} is a cloud environment rendered for {primary}: a release goes there by "
            f"{primary} only, not {plan.strategy}",
            hint="its Kubernetes objects are those of its primary strategy",
        )
    for move in plan.moves:
        if move.migrate:
            raise BadInput(
                f"{move.service} {move.to_version} has a migration: migrations do not run on "
                "the cloud target yet",
                hint="deploy the release to a local environment, or migrate by hand",
            )
        if primary != "canary" or ingress:
            continue
        weights = [s.weight for s in settings.steps if s.weight is not None]
        bad = unrepresentable(weights, move.replicas)
        if bad is not None:
            raise BadInput(
                f"canary weight {bad} cannot be approximated with the {move.replicas} "
                f"replica(s) of {move.service} (no Ingress: a weight is the canary's share "
                "of the replicas)",
                hint=f"give {env} an Ingress (variable {INGRESS_CLASS_VARIABLE}), or steps "
                "the replicas can express",
            )


def check_traffic(
    source: PrometheusSource,
    namespace: str,
    move: ServiceMove,
    service: str,
    seconds: float,
    stable: str | None,
    a: Analysis,
) -> tuple[analysis.Verdict, dict[str, Any]]:
    """Wait `seconds`, then judge what Service `service` answered in them (and count what
    `stable` answered beside it, outside the verdict, as the local canary does)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    at = time.time()
    seen = source.traffic(namespace, service, seconds, at)
    rate = (seen.requests - seen.failures) / seen.requests if seen.requests else None
    stats = analysis.Stats(seen.requests, seen.failures, rate, seen.p99_seconds)
    thresholds = analysis.Thresholds(
        min_success_rate=a.success_rate / 100.0,
        max_p99_seconds=a.p99_ms / 1000.0,
        min_requests=a.min_requests,
    )
    verdict = analysis.judge(stats, thresholds)
    entry: dict[str, Any] = {
        "service": move.service,
        "version": move.to_version,
        "requests": stats.requests,
        "failures": stats.failures,
        "success_rate": stats.success_rate,
        "p99_seconds": stats.p99_seconds,
        "result": verdict.result,
        "reason": verdict.reason,
        "source": "prometheus",
    }
    if stable is not None:
        base = source.traffic(namespace, stable, seconds, at)
        entry["stable"] = {"requests": base.requests, "failures": base.failures}
    return verdict, entry
