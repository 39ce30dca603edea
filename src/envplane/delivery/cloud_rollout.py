"""One rollout of a release into a cloud environment: the strategies through the Kubernetes
API, judged on ingress-nginx's metrics in Prometheus, and the settling every way out ends in.

The same public surface as rollout.Rollout (run, settle, report, routes, ctx, delivery, stop),
so the deploy, rollback, continue and resume paths drive either. On the cloud a service's
version is its image tag and its objects are those render/cloud/tracks.py renders for the
environment's primary strategy:

- rolling / recreate: the one Deployment applied at the new image; Kubernetes replaces the pods
  (RollingUpdate maxSurge 1 / maxUnavailable 0, or Recreate, whose downtime is measured);
- blue_green: the other color's Deployment at the new version, waited ready, the preview
  Service's smoke check, one switch of the active Service's selector, a post-promotion
  analysis; the old color kept `scale_down_delay` for a switch-only rollback;
- canary: the canary track at the new version and the weights in order (the canary Ingress's
  ingress-nginx weight, or the share of the replicas without an Ingress), each below 100 judged.

Every move is a journaled step, and every way out ends in `settle`, which observes before it
acts (a Service already selecting the color is left alone): after a kill, resume reaches one
version on one color, like the local target.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from envplane.delivery.cloud_checks import check_traffic, refuse_plan
from envplane.delivery.documents import DeployPlan, ServiceMove
from envplane.delivery.rollout import running_before
from envplane.delivery.verdicts import (
    JournaledSteps,
    Paused,
    Report,
    RolledBack,
    act_on_verdict,
)
from envplane.desired import matrix_for, project_of
from envplane.errors import EnvplaneError, OperationFailed
from envplane.render.cloud import desired_cloud
from envplane.render.cloud.names import k8s_name
from envplane.render.cloud.tracks import (
    INGRESS_CLASS_VARIABLE,
    WEIGHT_ANNOTATION,
    TrackNames,
    canary_split,
    names,
)
from envplane.render.model import DesiredEnvironment, Running
from envplane.targets.cloud.delivery import CloudDelivery

if TYPE_CHECKING:
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.records import StepAction
    from envplane.state.store import StateStore
    from envplane.targets.base import DeliveryTarget
    from envplane.workspace import Workspace

WORKLOADS = "kubernetes/workloads"


class CloudRollout(JournaledSteps):
    def __init__(
        self,
        ws: Workspace,
        plan: DeployPlan,
        op_id: str,
        *,
        delivery: DeliveryTarget | CloudDelivery,
        strategy: DeploymentStrategy,
        first_index: int = 0,
        rollout_id: str | None = None,
    ) -> None:
        self.ws, self.plan, self.op_id = ws, plan, op_id
        self.rollout_id = rollout_id or op_id
        self.settings = strategy
        self.env = plan.environment
        self.index = first_index
        self.report = Report()
        self.routes: list[float] = []  # seconds of each traffic move
        record = ws.store.get_environment(self.env)
        assert record is not None
        self.env_record = record
        self.matrix = matrix_for(ws, self.env)
        self.primary = self.matrix.strategy_for(self.env).primary
        self.ingress = bool(self.matrix.variables_for(self.env).get(INGRESS_CLASS_VARIABLE))
        self.before = running_before(ws, plan)
        self.after = {
            **self.before,
            **{m.service: Running(m.to_version, m.to_color) for m in plan.moves},
        }
        self.old = self._render(self.before)
        self.new = self._render(self.after)
        self.ctx = ws.context(self.env, {}, project_of(ws))
        # The lead's registry may hand over any DeliveryTarget; the cloud needs its own moves.
        self.delivery = delivery if isinstance(delivery, CloudDelivery) else CloudDelivery()
        self.delivery.attach(self.new.resource(WORKLOADS).spec)

    def _render(self, running: Mapping[str, Running]) -> DesiredEnvironment:
        return desired_cloud(
            self.matrix, self.env, template=self.env_record.template, running=running
        )

    # --- the moves (each a journaled step: JournaledSteps.step) -------------------------

    def names(self, service: str) -> TrackNames:
        return names(k8s_name(service), self.primary, ingress=self.ingress)

    def manifest(self, desired: DesiredEnvironment, kind: str, name: str) -> dict[str, Any]:
        for m in desired.resource(WORKLOADS).spec["manifests"]:
            if m["kind"] == kind and m["metadata"]["name"] == name:
                return dict(m)
        raise OperationFailed(f"the rendering of {self.env} has no {kind}/{name}")

    def scale(
        self, desired: DesiredEnvironment, deployment: str, replicas: int, *, why: str
    ) -> None:
        """Deployment `deployment` as `desired` renders it, at `replicas`, waited ready."""
        manifest = self.manifest(desired, "Deployment", deployment)
        action: StepAction = "stop" if replicas == 0 else "start"

        def work() -> None:
            # Observed first: a Deployment already at that image and size is only waited for
            # (a switch-only rollback changes no Deployment but the one it leaves).
            if not self.delivery.runs(self.ctx, manifest, replicas):
                self.delivery.deploy(self.ctx, manifest, replicas)
            self.delivery.wait_ready(self.ctx, deployment)

        self.step(f"kubernetes/{deployment}/{replicas}", action, work)
        self.ws.progress(f"{deployment}: {replicas} replica(s) ready ({why})")

    def stop(self, service: str, color: str, replica: int) -> None:
        """Scale a kept blue-green color down (its Deployment as one; the replica is ignored)."""
        deployment = names(k8s_name(service), "blue_green", ingress=False).deployments[color]
        manifest = self.manifest(self.new, "Deployment", deployment)
        self.step(
            f"kubernetes/{deployment}/0",
            "stop",
            lambda: self.delivery.deploy(self.ctx, manifest, 0),
        )

    def switch(self, service: str, desired: DesiredEnvironment, *, marks: bool = False) -> None:
        """Point the active Service (and the preview) as `desired` renders them; nothing is
        patched when the live active Service already selects that. `marks`: the rollout's
        record says `switched` (and the service among `switched_services`) with the step
        itself: a kill right after it resumes forward."""
        n = self.names(service)
        active = self.manifest(desired, "Service", n.active_service)
        live = self.delivery.kube(self.ctx).get(
            "Service", n.active_service, self.delivery.namespace
        )
        if live is not None and live.get("spec", {}).get("selector") == active["spec"]["selector"]:
            return
        wanted = [active]
        if n.preview_service:
            wanted.append(self.manifest(desired, "Service", n.preview_service))
        took: list[float] = []

        def work() -> None:
            started = time.monotonic()
            for manifest in wanted:
                self.delivery.apply(self.ctx, manifest)
            took.append(time.monotonic() - started)

        def mark(store: StateStore) -> None:
            if not marks:
                return
            # Per service, as the local rollout marks it: a release of several is resumed
            # forward only once every one of them switched.
            record = store.get_rollout(self.rollout_id)
            before = list(record.detail.get("switched_services") or []) if record else []
            detail = {"switched": True, "switched_services": [*before, service]}
            store.update_rollout(self.rollout_id, detail=detail)

        self.step(f"kubernetes/{n.active_service}/selector", "route", work, record=mark)
        self.routes.append(took[-1])
        self.ws.progress(f"{n.active_service}: selects {active['spec']['selector']}")

    def weigh(self, move: ServiceMove, weight: int) -> None:
        """`weight` per cent of the service's requests to the canary track."""
        n = self.names(move.service)
        replicas = move.replicas
        if n.canary_ingress is None:
            split = canary_split(weight, replicas) if weight else (0, replicas)
            assert split is not None  # run() refused the weights replicas cannot express
            canary, stable = split
            started = time.monotonic()
            if canary:
                self.scale(self.new, n.deployments["canary"], canary, why=f"{weight}%")
            self.scale(self.old, n.deployments["stable"], stable, why=f"{weight}%")
            self.routes.append(time.monotonic() - started)
            return
        ingress = self.manifest(self.new, "Ingress", n.canary_ingress)
        annotations = {**ingress["metadata"]["annotations"], WEIGHT_ANNOTATION: str(weight)}
        ingress = {**ingress, "metadata": {**ingress["metadata"], "annotations": annotations}}
        self.step(
            f"kubernetes/{n.canary_ingress}/weight-{weight}",
            "route",
            lambda: self.delivery.apply(self.ctx, ingress),
        )
        self.routes.append(0.0)
        self.ws.progress(f"{n.canary_ingress}: canary weight {weight}")

    # --- the strategies -----------------------------------------------------------------

    def run(self) -> None:
        """Every service of the release, in dependency order; any failure rolls all of them
        (those done and the one failing) back to what ran before."""
        refuse_plan(self.plan, self.settings, primary=self.primary, ingress=self.ingress)
        done: list[ServiceMove] = []
        try:
            for move in self.plan.moves:
                done.append(move)
                self.ws.progress(
                    f"{move.service}: {move.from_version} -> {move.to_version} by "
                    f"{self.plan.strategy} (cloud)"
                )
                getattr(self, f"_{self.plan.strategy}")(move)
        except Paused:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise  # a killed process is resumed (`envplane resume`), not rolled back here
            reason = exc.message if isinstance(exc, EnvplaneError) else str(exc)
            self.phase("rolling-back", reason=reason)
            self.settle(done, to_new=False)
            raise RolledBack(
                f"rolled back {self.plan.release_id} in {self.env}: {reason}",
                operation_id=self.op_id,
                hint="the previous version runs again on every service of the release",
            ) from exc
        self.settle(self.plan.moves, to_new=True)

    def _in_place(self, move: ServiceMove) -> float:
        deployment = self.names(move.service).deployments["main"]
        started = time.monotonic()
        self.scale(self.new, deployment, move.replicas, why=f"{move.to_version} rolled out")
        return time.monotonic() - started

    def _rolling(self, move: ServiceMove) -> None:
        self.phase(f"{move.service}: rolling update")
        self._in_place(move)
        self.phase(f"{move.service}: rolled", switched=True)

    def _recreate(self, move: ServiceMove) -> None:
        self.phase(f"{move.service}: recreate")
        # Recreate stops every old pod before the first new one starts: no pod serves from
        # the apply until the new ones are ready (an upper bound of the real downtime).
        took = self._in_place(move)
        self.report.downtime_seconds = max(self.report.downtime_seconds or 0.0, took)
        self.ws.progress(f"{move.service}: recreated; down for at most {took:.2f}s")

    def _blue_green(self, move: ServiceMove) -> None:
        n = self.names(move.service)
        self.phase(f"{move.service}: new color")
        self.scale(self.new, n.deployments[move.to_color], move.replicas, why="new color")
        self.phase(f"{move.service}: pre-promotion analysis")
        assert n.preview_service is not None
        self.step(
            f"kubernetes/{n.preview_service}/pre-promotion",
            "analyze",
            partial(self.smoke, move, n.preview_service),
        )
        self.phase(f"{move.service}: switch")
        self.switch(move.service, self.new, marks=True)
        self.report.switch_seconds = self.routes[-1] if self.routes else None
        self.phase(f"{move.service}: post-promotion analysis", switched=True)
        self.step(
            f"kubernetes/{n.active_service}/post-promotion",
            "analyze",
            partial(self.judge, move, n.active_service, self.settings.analysis.window, None),
        )

    def _canary(self, move: ServiceMove) -> None:
        n = self.names(move.service)
        assert n.canary_service is not None
        steps = list(self.settings.steps)
        if self.plan.first_step == 0:
            self.phase(f"{move.service}: canary")
            if n.canary_ingress is not None:  # the whole canary track; the Ingress weighs it
                self.scale(self.new, n.deployments["canary"], move.replicas, why="canary")
        for position in range(self.plan.first_step, len(steps)):
            item = steps[position]
            if item.weight is None:
                if item.waits_for_continue:
                    self.phase(f"{move.service}: paused", step=position + 1)
                    raise Paused(
                        f"the canary of {self.plan.release_id} in {self.env} is paused at "
                        f"step {position + 1} of {len(steps)}",
                        hint=f"continue it: envplane promote --continue --to {self.env}; "
                        f"or roll it back: envplane rollback {self.env}",
                    )
                self.step(
                    f"kubernetes/{n.canary_service}/pause-{position + 1}",
                    "wait",
                    partial(time.sleep, float(item.pause or 0.0)),
                )
                continue
            self.phase(f"{move.service}: {item.weight}%", step=position)
            self.weigh(move, item.weight)
            if item.weight < 100:
                self.step(
                    f"kubernetes/{n.canary_service}/analysis-{item.weight}",
                    "analyze",
                    partial(
                        self.judge,
                        move,
                        n.canary_service,
                        self.settings.analysis.interval,
                        n.active_service,
                    ),
                )
        if steps[-1].weight != 100:
            self.weigh(move, 100)

    # --- checks -------------------------------------------------------------------------

    def smoke(self, move: ServiceMove, preview: str) -> None:
        """The new color through its preview Service: health, then the smoke path. (Each pod's
        readiness probe already passed: Kubernetes counts it ready only then.)"""
        service = self.matrix.services_for(self.env)[move.service]
        paths = [service.health_path] + ([service.smoke_path] if service.smoke_path else [])
        for path in paths:
            ok, detail = self.delivery.probe(self.ctx, preview, path)
            if not ok:
                raise OperationFailed(f"pre-promotion check through {preview}: {detail}")
        self.ws.progress(f"{preview}: pre-promotion checks passed ({', '.join(paths)})")

    def judge(self, move: ServiceMove, service: str, seconds: float, stable: str | None) -> None:
        """The new version's requests through ingress-nginx (Service `service`), `seconds`
        at a time, with the judge and the semantics of the local target's access log."""
        source = self.delivery.prometheus(self.ctx)
        a = self.settings.analysis
        failures = 0
        while True:
            verdict, entry = check_traffic(
                source, self.delivery.namespace, move, service, seconds, stable, a
            )
            self.report.analysis.append(entry)
            failures = act_on_verdict(
                verdict,
                failures,
                a,
                about=f"{move.service} {move.to_version}",
                service=move.service,
                where=(self.env, self.plan.release_id),
                progress=self.ws.progress,
                phase=self.phase,
            )
            if failures < 0:
                return

    # --- the one way out ----------------------------------------------------------------

    def settle(self, moves: list[ServiceMove], *, to_new: bool) -> None:
        """Each move's service runs one version on one color (or track), the traffic there,
        the rest scaled to 0 (blue-green keeps the old color when it moved forward)."""
        source = self.new if to_new else self.old
        keep: dict[str, dict[str, Any]] = {}
        for move in moves:
            n = self.names(move.service)
            if self.primary == "blue_green":
                color = move.to_color if to_new else move.from_color
                other = move.from_color if to_new else move.to_color
                self.scale(source, n.deployments[color], move.replicas, why=f"{color} serves")
                self.switch(move.service, source)
                if other == color:
                    continue
                if to_new and self.plan.kind == "deploy":
                    until = datetime.now(UTC) + timedelta(seconds=self.settings.scale_down_delay)
                    keep[move.service] = {
                        "color": other,
                        "version": move.from_version,
                        "until": until.isoformat(timespec="seconds"),
                    }
                    continue
                self.scale(source, n.deployments[other], 0, why=f"{other} left")
            elif self.primary == "canary":
                if n.canary_ingress is not None:
                    self.weigh(move, 0)
                stable = n.deployments["stable"]
                self.scale(source, stable, move.replicas, why="stable serves")
                self.scale(source, n.deployments["canary"], 0, why="canary done")
            else:
                self.scale(source, n.deployments["main"], move.replicas, why="settled")
        self.record(moves, to_new=to_new, retained=keep)

    def record(
        self, moves: list[ServiceMove], *, to_new: bool, retained: dict[str, dict[str, Any]]
    ) -> None:
        """The store learns what runs: the workloads as rendered now, and the live release."""
        res = (self.new if to_new else self.old).resource(WORKLOADS)
        store = self.ws.store
        store.record_resource(self.env, res.key, res.kind, res.digest, dict(res.spec))
        if not to_new:
            return
        services = {
            name: {"version": run.version, "color": run.color} for name, run in self.after.items()
        }
        live = store.get_live(self.env)
        old_retained = dict(live.retained) if live is not None else {}
        store.set_live(
            self.env,
            release_id=self.plan.release_id,
            services=services,
            rollout_id=self.rollout_id,
            retained={**old_retained, **retained},
            previous_release_id=self.plan.previous_release_id,
        )
