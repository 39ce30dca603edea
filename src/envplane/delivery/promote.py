"""promote, approve, reject: a deploy behind gates, with four-eyes approval.

A release is promoted into an environment from its upstream (the pipeline: `promote_from`, or
the environment before it) once every gate is open, checked in this order:

1. live: the release is what runs upstream, and the upstream environment is ready;
2. validation: it passed `envplane validate` upstream, at that environment's
   `validation_required` level or stricter, while this release was live (a recorded result);
3. soak: it has run upstream for the target's `soak` time;
4. approval: where the target has `approval_required`, `approvals` distinct people other
   than the one who asked approved it (four-eyes). The identity is the OS account running
   envplane (its uid, not $USER).

A closed gate is Blocked (exit 3), naming it; nothing is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from envplane.delivery.deploy import DeployResult, continue_canary, deploy, ready_environment
from envplane.delivery.releases import get_release
from envplane.desired import matrix_for
from envplane.errors import BadInput, Blocked
from envplane.matrix import policies

if TYPE_CHECKING:
    from envplane.state.records import Decision, PromotionRecord
    from envplane.workspace import Workspace

LEVELS = ("basic", "standard", "comprehensive")


class GateClosed(Blocked):
    def __init__(self, gate: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"gate {gate!r} is closed: {message}", hint=hint)
        self.gate = gate


@dataclass
class PromoteResult:
    release_id: str
    environment: str
    upstream: str | None
    gates: dict[str, str] = field(default_factory=dict)  # gate -> "open" or why not
    promotion_id: str | None = None
    deployed: DeployResult | None = None


def upstream_for(ws: Workspace, env: str) -> str:
    matrix = matrix_for(ws, env)
    upstream = matrix.upstream_of(env)
    if upstream is None:
        first = env in matrix.deployment_strategies
        raise BadInput(
            f"{env} is the first environment of the pipeline: releases are deployed there"
            if first
            else f"{env} is outside the pipeline (no `deployment_strategies` entry)",
            hint=f"envplane deploy {env} RELEASE",
        )
    return upstream


def check_gates(ws: Workspace, release_id: str, env: str, result: PromoteResult) -> None:
    """Open gates are noted in `result.gates`; the first closed one raises GateClosed."""
    upstream = upstream_for(ws, env)
    result.upstream = upstream
    store = ws.store
    live = store.get_live(upstream)
    record = store.get_environment(upstream)
    if live is None or live.release_id != release_id:
        running = live.release_id if live is not None and live.release_id else "no release"
        raise GateClosed(
            "live",
            f"{release_id} is not live in {upstream} (it runs {running})",
            hint=f"deploy or promote it there first: envplane promote {release_id} --to "
            f"{upstream} (or envplane deploy {upstream} {release_id})",
        )
    if record is None or record.status != "ready":
        status = record.status if record else "missing"
        raise GateClosed("live", f"{upstream} is {status}, not ready")
    result.gates["live"] = f"open: live in {upstream} since {live.since:%Y-%m-%d %H:%M:%S}"

    needed = matrix_for(ws, upstream).strategy_for(upstream).validation_required
    passed = [
        v
        for v in store.validations(upstream, limit=50)
        if v.passed
        and v.release_id == release_id
        and v.at >= live.since
        and LEVELS.index(v.level) >= LEVELS.index(needed)
    ]
    if not passed:
        raise GateClosed(
            "validation",
            f"{release_id} has no passed {needed} validation in {upstream} since it went live",
            hint=f"envplane validate {upstream} --level {needed}",
        )
    result.gates["validation"] = f"open: {passed[0].level} passed at {passed[0].at:%H:%M:%S}"

    soak = matrix_for(ws, env).strategy_for(env).soak
    if soak:
        ready_at = live.since + timedelta(seconds=soak)
        now = datetime.now(UTC)
        if now < ready_at:
            left = (ready_at - now).total_seconds()
            raise GateClosed(
                "soak",
                f"{release_id} has run in {upstream} for {(now - live.since).total_seconds():.0f}s"
                f" of the {soak:.0f}s soak ({left:.0f}s to go)",
                hint=f"promote again after {ready_at:%H:%M:%S} UTC",
            )
        result.gates["soak"] = f"open: soaked {soak:.0f}s"


def promote(
    ws: Workspace,
    release_id: str,
    env: str,
    *,
    dry_run: bool = False,
    message: str | None = None,
) -> PromoteResult:
    # First: a matrix the environment may not run is news whatever its state.
    policies.refuse(matrix_for(ws, env), [env])  # before a promotion is recorded
    ready_environment(ws, env)
    release = get_release(ws, release_id)
    result = PromoteResult(release.id, env, None)
    check_gates(ws, release.id, env, result)
    settings = matrix_for(ws, env).strategy_for(env)
    promotion: PromotionRecord | None = None
    if settings.approval_required:
        promotion = _open_promotion(ws, release.id, env)
        if promotion is None:
            if dry_run:
                result.gates["approval"] = "closed: not requested yet"
                return result
            promotion = ws.store.create_promotion(
                release.id,
                env,
                from_env=result.upstream,
                approvals_needed=settings.approvals,
                message=message,
            )
            ws.store.audit(env, "promotion requested", f"{promotion.id}: {release.id}")
        result.promotion_id = promotion.id
        approvers = _approvers(promotion)
        if promotion.status == "rejected":
            raise GateClosed("approval", f"{promotion.id} was rejected")
        if len(approvers) < promotion.approvals_needed:
            raise GateClosed(
                "approval",
                f"{promotion.id} has {len(approvers)} of {promotion.approvals_needed} approvals "
                f"(requested by {promotion.requested_by}; approvers must be other people)",
                hint=f"another user runs: envplane approve {promotion.id}",
            )
        result.gates["approval"] = f"open: approved by {', '.join(approvers)}"
    if dry_run:
        return result
    deployed = deploy(ws, env, release.id, promotion_id=promotion.id if promotion else None)
    result.deployed = deployed
    if promotion is not None:
        ws.store.set_promotion_status(
            promotion.id,
            "deployed" if deployed.status in ("succeeded", "unchanged") else "failed",
            rollout_id=deployed.operation_id,
        )
    return result


def continue_promotion(ws: Workspace, env: str) -> DeployResult:
    return continue_canary(ws, env)


def _open_promotion(ws: Workspace, release_id: str, env: str) -> PromotionRecord | None:
    for promotion in ws.store.promotions(env=env, limit=100):
        if promotion.release_id == release_id and promotion.status in (
            "pending",
            "approved",
            "rejected",
        ):
            return promotion
    return None


def _approvers(promotion: PromotionRecord) -> list[str]:
    return [
        d.actor
        for d in promotion.decisions
        if d.decision == "approve" and d.actor != promotion.requested_by
    ]


def decide(
    ws: Workspace, promotion_id: str, decision: str, message: str | None = None
) -> PromotionRecord:
    """Approve or reject a pending promotion; the requester may do neither (four-eyes)."""
    store = ws.store
    promotion = store.get_promotion(promotion_id)
    if promotion is None:
        raise BadInput(f"no promotion {promotion_id!r}", hint="`envplane promotions` lists them")
    if promotion.status not in ("pending", "approved"):
        raise Blocked(f"{promotion.id} is {promotion.status}: it takes no more decisions")
    me = store.actor
    if me == promotion.requested_by:
        store.audit(promotion.env, "refused", f"{decision} of {promotion.id} by its requester {me}")
        raise Blocked(
            f"{me} requested {promotion.id}: an approver must be someone else (four-eyes)",
            hint="ask another person to run `envplane approve` as their own user",
        )
    verb: Decision = "approve" if decision == "approve" else "reject"
    updated = store.add_decision(promotion.id, verb, message)
    if verb == "reject":
        updated = store.set_promotion_status(promotion.id, "rejected")
    elif len(_approvers(updated)) >= updated.approvals_needed:
        updated = store.set_promotion_status(promotion.id, "approved")
    store.audit(
        promotion.env,
        "approved" if verb == "approve" else "rejected",
        f"{promotion.id} ({promotion.release_id}) by {me}" + (f": {message}" if message else ""),
    )
    return updated
