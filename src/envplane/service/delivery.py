"""Releases, deploys, promotions, approvals and rollbacks for the front doors, with the views
that are their `-o json` documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from envplane.delivery import deploy as deploying
from envplane.delivery import promote as promoting
from envplane.delivery import rollback as rolling_back
from envplane.delivery import scaledown
from envplane.delivery.releases import create_release, get_release, parse_pins
from envplane.desired import running_services
from envplane.errors import BadInput, EnvplaneError
from envplane.service.results import Timestamp

if TYPE_CHECKING:
    from envplane.delivery.deploy import DeployResult
    from envplane.delivery.promote import PromoteResult
    from envplane.state.records import PromotionRecord, ReleaseRecord, RolloutRecord
    from envplane.workspace import Workspace


class ReleaseView(BaseModel):
    id: str
    created_at: Timestamp
    created_by: str
    note: str | None
    services: dict[str, str]
    config_digest: str
    source_env: str | None

    @classmethod
    def of(cls, r: ReleaseRecord) -> ReleaseView:
        return cls(
            id=r.id,
            created_at=r.created_at,
            created_by=r.created_by,
            note=r.note,
            services=dict(r.services),
            config_digest=r.config_digest,
            source_env=r.source_env,
        )


class MoveView(BaseModel):
    service: str
    from_version: str
    from_color: str
    to_version: str
    to_color: str
    replicas: int


class DeployView(BaseModel):
    environment: str
    kind: str
    release: str
    previous_release: str | None
    strategy: str
    status: str
    operation_id: str | None
    seconds: float
    moves: list[MoveView]
    detail: dict[str, Any]
    messages: list[str]

    @classmethod
    def of(cls, r: DeployResult) -> DeployView:
        p = r.plan
        return cls(
            environment=p.environment,
            kind=p.kind,
            release=p.release_id,
            previous_release=p.previous_release_id,
            strategy=p.strategy,
            status=r.status,
            operation_id=r.operation_id,
            seconds=round(r.seconds, 3),
            moves=[MoveView.model_validate(m.model_dump()) for m in p.moves],
            detail=dict(r.detail),
            messages=list(r.messages),
        )


class RolloutView(BaseModel):
    id: str
    kind: str
    release: str
    strategy: str
    status: str
    phase: str
    actor: str
    started_at: Timestamp
    finished_at: Timestamp | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, r: RolloutRecord) -> RolloutView:
        return cls(
            id=r.id,
            kind=r.kind,
            release=r.release_id,
            strategy=r.strategy,
            status=r.status,
            phase=r.phase,
            actor=r.actor,
            started_at=r.started_at,
            finished_at=r.finished_at,
            detail=dict(r.detail),
        )


class StatusView(BaseModel):
    environment: str
    release: str | None
    since: Timestamp | None
    services: dict[str, dict[str, str]]
    retained: dict[str, dict[str, Any]]
    in_flight: RolloutView | None
    upstream: str | None
    last_rollouts: list[RolloutView]


class DecisionView(BaseModel):
    actor: str
    decision: str
    at: Timestamp
    message: str | None


class PromotionView(BaseModel):
    id: str
    release: str
    environment: str
    from_env: str | None
    requested_by: str
    requested_at: Timestamp
    status: str
    approvals_needed: int
    decisions: list[DecisionView]

    @classmethod
    def of(cls, p: PromotionRecord) -> PromotionView:
        return cls(
            id=p.id,
            release=p.release_id,
            environment=p.env,
            from_env=p.from_env,
            requested_by=p.requested_by,
            requested_at=p.requested_at,
            status=p.status,
            approvals_needed=p.approvals_needed,
            decisions=[
                DecisionView(actor=d.actor, decision=d.decision, at=d.at, message=d.message)
                for d in p.decisions
            ],
        )


class PromoteView(BaseModel):
    release: str
    environment: str
    upstream: str | None
    gates: dict[str, str]
    promotion_id: str | None
    deployed: DeployView | None

    @classmethod
    def of(cls, r: PromoteResult) -> PromoteView:
        return cls(
            release=r.release_id,
            environment=r.environment,
            upstream=r.upstream,
            gates=dict(r.gates),
            promotion_id=r.promotion_id,
            deployed=DeployView.of(r.deployed) if r.deployed else None,
        )


def release_create(
    ws: Workspace, pins: list[str], *, from_env: str | None, note: str | None
) -> ReleaseView:
    return ReleaseView.of(create_release(ws, parse_pins(pins), from_env=from_env, note=note))


def releases(ws: Workspace, limit: int = 50) -> list[ReleaseView]:
    return [ReleaseView.of(r) for r in ws.store.releases(limit=limit)]


def release(ws: Workspace, release_id: str) -> ReleaseView:
    return ReleaseView.of(get_release(ws, release_id))


def status(ws: Workspace, env: str) -> StatusView:
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} does not exist", hint=f"envplane create {env}")
    live = ws.store.get_live(env)
    running = running_services(ws, env)
    active = ws.store.active_rollout(env)
    try:
        upstream = ws.matrix.upstream_of(env) if env in ws.matrix.environments else None
    except BadInput:
        upstream = None
    return StatusView(
        environment=env,
        release=live.release_id if live else None,
        since=live.since if live else None,
        services={n: {"version": r.version, "color": r.color} for n, r in running.items()},
        retained=dict(live.retained) if live else {},
        in_flight=RolloutView.of(active) if active else None,
        upstream=upstream,
        last_rollouts=[RolloutView.of(r) for r in ws.store.rollouts(env, limit=5)],
    )


def deploy(
    ws: Workspace,
    env: str,
    release_id: str,
    *,
    strategy: str | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> DeployView:
    return DeployView.of(
        deploying.deploy(ws, env, release_id, strategy=strategy, dry_run=dry_run, force=force)
    )


def rollback(
    ws: Workspace, env: str, *, to: str | None, data: str, dry_run: bool = False
) -> DeployView:
    return DeployView.of(rolling_back.rollback(ws, env, to=to, data=data, dry_run=dry_run))


def promote(
    ws: Workspace, release_id: str, env: str, *, dry_run: bool = False, message: str | None = None
) -> PromoteView:
    return PromoteView.of(promoting.promote(ws, release_id, env, dry_run=dry_run, message=message))


def continue_rollout(ws: Workspace, env: str) -> DeployView:
    return DeployView.of(promoting.continue_promotion(ws, env))


def approve(ws: Workspace, promotion_id: str, message: str | None = None) -> PromotionView:
    return PromotionView.of(promoting.decide(ws, promotion_id, "approve", message))


def reject(ws: Workspace, promotion_id: str, message: str | None = None) -> PromotionView:
    return PromotionView.of(promoting.decide(ws, promotion_id, "reject", message))


def promotions(ws: Workspace, env: str | None = None) -> list[PromotionView]:
    return [PromotionView.of(p) for p in ws.store.promotions(env=env)]


GateClosed = promoting.GateClosed  # what a front door catches to show a closed gate


def promotion_gates(ws: Workspace, p: PromotionView) -> dict[str, str]:
    """Each gate of a promotion as `promote` checks it now (its own check, which records
    nothing), gate -> "open: ..." / "closed: ...": the open ones, then the first closed one and
    why; approval from the promotion's decisions."""
    result = promoting.PromoteResult(p.release, p.environment, None)
    try:
        promoting.check_gates(ws, p.release, p.environment, result)
    except GateClosed as exc:
        return {**result.gates, exc.gate: "closed: " + exc.message.split(" is closed: ", 1)[-1]}
    except EnvplaneError as exc:
        return {**result.gates, "promote": f"closed: {exc.message}"}
    approvers = sorted({d.actor for d in p.decisions if d.decision == "approve"})
    count = f"{len(approvers)} of {p.approvals_needed} approvals"
    by = f" by {', '.join(approvers)}" if approvers else ""
    state = "open" if p.status == "approved" else "closed"
    return {**result.gates, "approval": f"{state}: {count}{by}"}


class ScaleDownView(BaseModel):
    environment: str
    stopped: dict[str, str]  # service -> the kept color stopped
    kept: dict[str, str]  # service -> until when its old color stays
    operation_id: str | None


def scale_down(ws: Workspace, env: str, *, when_due: bool = False) -> ScaleDownView:
    """Stop the old colors blue-green keeps: now, or (`when_due`) each once its delay is over."""
    run = scaledown.wait_then_scale_down if when_due else scaledown.scale_down
    done = run(ws, env)
    return ScaleDownView(
        environment=env, stopped=done.stopped, kept=done.kept, operation_id=done.operation_id
    )
