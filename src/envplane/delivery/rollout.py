"""One rollout of a release into an environment: the strategies, their analysis, and the
settling every way out of them ends in.

A rollout moves each service of a release (in `depends_on` order) from what it runs (a
version on one color: a set of replica ports) to the new version, by its strategy:

- recreate: stop the old replicas, start the new ones on the same ports (downtime measured);
- rolling: one replica at a time on the other color (max surge 1, max unavailable 0);
- blue_green: the whole new color beside the old, checked replica by replica, one switch,
  a post-promotion analysis, the old color kept `scale_down_delay` for a switch-only rollback;
- canary: the new color gets weighted steps of the traffic, each version judged separately on
  its own requests (access log), a failed analysis rolls back by itself.

Every move is a journaled step. Whatever happens — a failed check, an error, a kill and a
later `resume` — ends in `settle`: one version of each service on one color, the proxy
routing to exactly it, the other color's replicas stopped. Never two colors half-switched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envplane.delivery import analysis
from envplane.delivery.documents import DeployPlan, ServiceMove
from envplane.delivery.verdicts import (
    JournaledSteps,
    Paused,
    Report,
    RolledBack,
    act_on_verdict,
)
from envplane.desired import project_of, render
from envplane.errors import EnvplaneError, OperationFailed
from envplane.render.local import upstream_name
from envplane.render.model import Resource, Running
from envplane.targets.base import DeliveryTarget, EnvContext
from envplane.targets.registry import Rendered

if TYPE_CHECKING:
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.store import StateStore
    from envplane.workspace import Workspace

POLL = 0.25


class Rollout(JournaledSteps):
    def __init__(
        self,
        ws: Workspace,
        plan: DeployPlan,
        op_id: str,
        *,
        delivery: DeliveryTarget,
        strategy: DeploymentStrategy,
        first_index: int = 0,
        rollout_id: str | None = None,
    ) -> None:
        self.ws, self.plan, self.op_id = ws, plan, op_id
        self.rollout_id = rollout_id or op_id
        self.delivery, self.settings = delivery, strategy
        self.env = plan.environment
        self.index = first_index
        self.report = Report()
        self.routes: list[float] = []  # seconds of each switch, until old workers were gone
        record = ws.store.get_environment(self.env)
        assert record is not None
        self.env_record = record
        self.before = running_before(ws, plan)
        self.after = {
            **self.before,
            **{m.service: Running(m.to_version, m.to_color) for m in plan.moves},
        }
        self.old = self._render(self.before)
        self.new = self._render(self.after)
        self.ctx: EnvContext = ws.context(self.env, self.new.ports, project_of(ws))
        self.proxy = self.new.desired.resource("proxy/nginx")
        # What the proxy routes now, service by service: changed one upstream at a time.
        self.upstreams: dict[str, list[dict[str, int]]] = {
            k: list(v)
            for k, v in dict(self.old.desired.resource("proxy/nginx").spec["upstreams"]).items()
        }

    def _render(self, running: dict[str, Running]) -> Rendered:
        rec = self.env_record
        return render(
            self.ws,
            self.env,
            target=rec.target or "local",
            template=rec.template,
            ports=rec.ports or {},
            running=running,
        )

    # --- the moves (each a journaled step: JournaledSteps.step) -------------------------

    def old_res(self, move: ServiceMove) -> Resource:
        return self.old.desired.resource(f"service/{move.service}")

    def new_res(self, move: ServiceMove) -> Resource:
        return self.new.desired.resource(f"service/{move.service}")

    def ports(self, res: Resource) -> list[int]:
        return [int(p) for p in res.spec["ports"]]

    def start(self, res: Resource, replica: int) -> None:
        self.step(
            f"{res.key}/{res.spec['color']}-{replica}",
            "start",
            lambda: self.delivery.start_replica(self.ctx, res, replica),
        )

    def stop(self, service: str, color: str, replica: int) -> None:
        self.step(
            f"service/{service}/{color}-{replica}",
            "stop",
            lambda: self.delivery.stop_replica(self.ctx, service, color, replica),
        )

    def route(
        self,
        service: str,
        servers: list[dict[str, int]],
        why: str,
        *,
        marks: dict[str, Any] | None = None,
    ) -> float:
        """Send `service`'s traffic to `servers`; seconds until the switch was complete.
        `marks` land on the rollout's record with the step itself: a kill right after the
        step finds them (a blue-green whose switch completed is resumed forward)."""
        self.upstreams[upstream_name(service)] = servers
        spec = {**dict(self.proxy.spec), "upstreams": dict(self.upstreams)}
        proxy = replace(self.proxy, spec=spec)
        took: list[float] = []

        def mark(store: StateStore) -> None:
            if marks:
                store.update_rollout(self.rollout_id, detail=marks)

        self.step(
            f"proxy/nginx/{service}",
            "route",
            lambda: took.append(self.delivery.route(self.ctx, proxy)),
            record=mark,
        )
        self.ws.progress(f"{service}: {why} ({took[-1]:.2f}s until every old worker was gone)")
        self.routes.append(took[-1])
        return took[-1]

    # --- the strategies -----------------------------------------------------------------

    def run(self) -> None:
        """Every service of the release, in dependency order; any failure rolls all of them
        (those done and the one failing) back to what ran before."""
        done: list[ServiceMove] = []
        try:
            for move in self.plan.moves:
                done.append(move)
                self.ws.progress(
                    f"{move.service}: {move.from_version} ({move.from_color}) -> "
                    f"{move.to_version} ({move.to_color}) by {self.plan.strategy}"
                )
                strategy = getattr(self, f"_{self.plan.strategy}")
                strategy(move)
        except Paused:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise  # a killed process is resumed (`envplane resume`), not rolled back here
            reason = exc.message if isinstance(exc, EnvplaneError) else str(exc)
            self.phase("rolling-back", reason=reason)
            self.settle(done, to_new=False)
            hint = "the previous version runs again on every service of the release"
            record = self.ws.store.get_rollout(self.rollout_id)
            if record is not None and record.detail.get("migrated") and self.plan.backup_id:
                # Data is never thrown away by itself: the old code runs on the migrated data.
                hint += (
                    f"; the migration's changes stay (envplane restore {self.env} "
                    f"{self.plan.backup_id} brings back the data from before it)"
                )
            raise RolledBack(
                f"rolled back {self.plan.release_id} in {self.env}: {reason}",
                operation_id=self.op_id,
                hint=hint,
            ) from exc
        self.settle(self.plan.moves, to_new=True)

    def _recreate(self, move: ServiceMove) -> None:
        new = self.new_res(move)
        self.phase(f"{move.service}: stop")
        stopped = time.monotonic()
        for replica in range(move.replicas):
            self.stop(move.service, move.from_color, replica)
        self.migrate(move)
        for replica in range(move.replicas):
            self.start(new, replica)
        self.report.downtime_seconds = max(
            self.report.downtime_seconds or 0.0, time.monotonic() - stopped
        )
        self.ws.progress(
            f"{move.service}: recreated; no replica served for "
            f"{self.report.downtime_seconds:.2f}s (recreate takes the service down)"
        )

    def _rolling(self, move: ServiceMove) -> None:
        old, new = self.ports(self.old_res(move)), self.ports(self.new_res(move))
        self.migrate(move)
        for replica in range(move.replicas):
            self.phase(f"{move.service}: replica {replica}")
            self.start(self.new_res(move), replica)
            servers = [{"port": p, "weight": 1} for p in new[: replica + 1] + old[replica + 1 :]]
            self.route(move.service, servers, f"replica {replica} of {move.to_version} in")
            self.stop(move.service, move.from_color, replica)
        self.phase(f"{move.service}: rolled", switched=True)

    def _blue_green(self, move: ServiceMove) -> None:
        new_res = self.new_res(move)
        new = self.ports(new_res)
        self.phase(f"{move.service}: new color")
        self.migrate(move)
        for replica in range(move.replicas):
            self.start(new_res, replica)
        self.phase(f"{move.service}: pre-promotion analysis")
        self.step(f"{new_res.key}/pre-promotion", "analyze", lambda: self.smoke(new_res))
        self.phase(f"{move.service}: switch")
        record = self.ws.store.get_rollout(self.rollout_id)
        before = list(record.detail.get("switched_services") or []) if record else []
        seconds = self.route(
            move.service,
            [{"port": p, "weight": 1} for p in new],
            f"switched to {move.to_color}",
            # Per service: a release of several is resumed forward only once all switched.
            marks={"switched": True, "switched_services": [*before, move.service]},
        )
        self.report.switch_seconds = seconds
        self.phase(f"{move.service}: post-promotion analysis", switched=True)
        window = self.settings.analysis.window
        self.step(
            f"{new_res.key}/post-promotion",
            "analyze",
            lambda: self.judge_window(move, new, window, stable=None),
        )

    def _canary(self, move: ServiceMove) -> None:
        new_res = self.new_res(move)
        old, new = self.ports(self.old_res(move)), self.ports(new_res)
        steps = list(self.settings.steps)
        if self.plan.first_step == 0:
            self.phase(f"{move.service}: canary")
            self.migrate(move)
            for replica in range(move.replicas):
                self.start(new_res, replica)
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
                self.step(f"{new_res.key}/pause-{position + 1}", "wait", _sleeper(item.pause))
                continue
            weight = item.weight
            self.phase(f"{move.service}: {weight}%", step=position)
            servers = [{"port": p, "weight": 100 - weight} for p in old if weight < 100]
            servers += [{"port": p, "weight": weight} for p in new]
            self.route(move.service, servers, f"{weight}% of the traffic to {move.to_version}")
            if weight < 100:
                self.step(
                    f"{new_res.key}/analysis-{weight}",
                    "analyze",
                    partial(
                        self.judge_window,
                        move,
                        new,
                        self.settings.analysis.interval,
                        stable=old,
                    ),
                )
        if steps[-1].weight != 100:
            self.route(move.service, [{"port": p, "weight": 1} for p in new], "100% to the canary")

    # --- checks -------------------------------------------------------------------------

    def smoke(self, res: Resource) -> None:
        """Each replica of the new color, on its own port: health, then the smoke path."""
        paths = [str(res.spec["health_path"])]
        if res.spec.get("smoke_path"):
            paths.append(str(res.spec["smoke_path"]))
        for replica in range(int(res.spec["replicas"])):
            for path in paths:
                ok, detail = self.delivery.probe(self.ctx, res, replica, path)
                if not ok:
                    raise OperationFailed(f"pre-promotion check of replica {replica}: {detail}")
        self.ws.progress(f"{res.name}: pre-promotion checks passed ({', '.join(paths)})")

    def judge_window(
        self, move: ServiceMove, ports: list[int], seconds: float, *, stable: list[int] | None
    ) -> None:
        """Watch the new version's own traffic for `seconds` at a time; `failure_limit`
        failed checks raise (the rollout rolls back). Inconclusive pauses or fails."""
        log = self.delivery.access_log(self.ctx)
        if log is None:
            raise OperationFailed("the target keeps no access log to analyse traffic with")
        a = self.settings.analysis
        thresholds = analysis.Thresholds(
            min_success_rate=a.success_rate / 100.0,
            max_p99_seconds=a.p99_ms / 1000.0,
            min_requests=a.min_requests,
        )
        offset = _size(log)
        failures = 0
        while True:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
            chunk = analysis.read_hits(log, offset)
            offset = chunk.offset
            canary = analysis.summarize(chunk.hits, ports)
            verdict = analysis.judge(canary, thresholds)
            entry: dict[str, Any] = {
                "service": move.service,
                "version": move.to_version,
                "requests": canary.requests,
                "failures": canary.failures,
                "success_rate": canary.success_rate,
                "p99_seconds": canary.p99_seconds,
                "result": verdict.result,
                "reason": verdict.reason,
            }
            if stable is not None:
                base = analysis.summarize(chunk.hits, stable)
                entry["stable"] = {"requests": base.requests, "failures": base.failures}
            self.report.analysis.append(entry)
            failures = self.verdict(move, verdict, failures)
            if failures < 0:
                return

    def verdict(self, move: ServiceMove, verdict: analysis.Verdict, failures: int) -> int:
        return act_on_verdict(
            verdict,
            failures,
            self.settings.analysis,
            about=f"{move.service} {move.to_version}",
            service=move.service,
            where=(self.env, self.plan.release_id),
            progress=self.ws.progress,
            phase=self.phase,
        )

    def migrate(self, move: ServiceMove) -> None:
        if not move.migrate:
            return
        rollout = self.ws.store.get_rollout(self.rollout_id)
        done = list(rollout.detail.get("migrated") or []) if rollout is not None else []
        if move.service in done:
            # A continued canary walks its steps again from the start; its data moved once.
            self.ws.progress(f"{move.service}: migration already ran in this rollout")
            return
        res = self.new_res(move)

        def migrated(store: StateStore) -> None:
            store.update_rollout(self.rollout_id, detail={"migrated": [*done, move.service]})

        self.step(
            f"{res.key}/migrate",
            "migrate",
            lambda: self.ws.progress(self.delivery.migrate(self.ctx, res)),
            record=migrated,
        )

    # --- the one way out ----------------------------------------------------------------

    def settle(self, moves: list[ServiceMove], *, to_new: bool) -> None:
        """Each move's service runs one version on one color, routed there, the other color
        stopped (blue-green keeps it `scale_down_delay` when it moved forward)."""
        keep: dict[str, dict[str, Any]] = {}
        for move in moves:
            res = self.new_res(move) if to_new else self.old_res(move)
            color = move.to_color if to_new else move.from_color
            other = move.from_color if to_new else move.to_color
            for replica in range(move.replicas):
                self.start(res, replica)  # idempotent: a running, matching replica is kept
            self.route(
                move.service,
                [{"port": p, "weight": 1} for p in self.ports(res)],
                f"all traffic on {color}",
            )
            if other == color:
                continue
            # A blue-green deploy keeps the old color for a switch-only rollback; a rollback
            # keeps nothing of the release it leaves.
            retained = to_new and self.plan.strategy == "blue_green" and self.plan.kind == "deploy"
            if retained:
                until = datetime.now(UTC) + timedelta(seconds=self.settings.scale_down_delay)
                keep[move.service] = {
                    "color": other,
                    "version": move.from_version,
                    "until": until.isoformat(timespec="seconds"),
                }
                continue
            for replica in self.delivery.replicas(self.ctx, move.service, other):
                self.stop(move.service, other, replica)
        self.record(moves, to_new=to_new, retained=keep)

    def record(
        self, moves: list[ServiceMove], *, to_new: bool, retained: dict[str, dict[str, Any]]
    ) -> None:
        """The store learns what runs: the service and proxy resources as they are now, and
        the monitoring's scrape targets re-applied where the live color changed."""
        source = self.new if to_new else self.old
        target = self.ws.target(self.env_record.target or "local")
        store = self.ws.store
        keys = [f"service/{m.service}" for m in moves] + ["proxy/nginx"]
        for key in keys:
            res = source.desired.resource(key)
            store.record_resource(self.env, key, res.kind, res.digest, dict(res.spec))
        for res in source.desired.resources:
            if res.kind != "monitoring":
                continue
            recorded = store.resources(self.env).get(res.key)
            if recorded is None or recorded.digest != res.digest:
                self.step(res.key, "update", partial(target.apply, self.ctx, "update", res))
                store.record_resource(self.env, res.key, res.kind, res.digest, dict(res.spec))
        store.save_environment(self.env, ports=source.ports)
        if to_new:
            services = {
                name: {"version": run.version, "color": run.color}
                for name, run in self.after.items()
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


def running_before(ws: Workspace, plan: DeployPlan) -> dict[str, Running]:
    from envplane.desired import running_services

    now = running_services(ws, plan.environment)
    return {**now, **{m.service: Running(m.from_version, m.from_color) for m in plan.moves}}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _sleeper(seconds: float | None) -> Callable[[], None]:
    return partial(time.sleep, float(seconds or 0.0))
