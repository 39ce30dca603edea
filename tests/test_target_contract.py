"""One contract for every target driver, driven in-process through the `Target` protocol
(pre-commit's one harness for every language): observe nothing → plan and apply the creates →
observe healthy → the plan again is all noop → a changed spec is one update, applied →
destroy from the record → observed gone, torn down, no leftovers.

Each target contributes a case: how to make its context and a small desired environment, one
resource with a changed spec, and how to see that the change took effect. The lifecycle below
is written once. The local target runs for real (supervisord, PostgreSQL, Redis, a service);
the cloud target on its stand-ins (terraform and helm executables, FakeKube, moto)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import pytest

from envplane.matrix import load_matrix
from envplane.plan.diff import compute_plan, destroy_plan
from envplane.plan.model import Plan
from envplane.render.cloud import desired_cloud
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets import registry
from envplane.targets.base import EnvContext, Target
from tests import localkit as k
from tests.conftest import EXAMPLE
from tests.support import Recorded, record

pytest_plugins = ("tests.fakes.fixtures",)


@dataclass(frozen=True)
class Setup:
    """One target, ready to be driven: what the harness needs and nothing else."""

    target: Target
    ctx: EnvContext
    desired: DesiredEnvironment
    changed: Resource  # one of desired's resources with another spec
    took_effect: Callable[[], bool]  # the running resource shows the changed spec
    ports: Mapping[str, int]  # what the store would record, for `leftovers`
    secret_values: tuple[str, ...]  # never in an endpoint's shown url


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[pytest.FixtureRequest], AbstractContextManager[Setup]]
    slow: bool = False  # starts real servers


# -- the local target, for real -----------------------------------------------------------


@contextmanager
def local_setup(_request: pytest.FixtureRequest) -> Iterator[Setup]:
    with k.local_env("contract") as env:
        daemon = k.supervisor()
        on_daemon = (daemon.key,)
        # Dependencies as the renderer gives them; the service is the resource that changes.
        basics = [
            dataclasses.replace(res, depends_on=on_daemon)
            for res in (k.storage(), k.postgres(env), k.redis(env), k.config(env))
        ]
        on_basics = tuple(sorted(r.key for r in basics))
        service = dataclasses.replace(k.echo_service(env), depends_on=on_basics)
        changed = dataclasses.replace(k.echo_service(env, msg="changed"), depends_on=on_basics)
        port = env.ports["service/backend/0"]
        yield Setup(
            target=registry.get_target("local"),
            ctx=env.ctx,
            desired=DesiredEnvironment("contract", "sunday", "local", (daemon, *basics, service)),
            changed=changed,
            took_effect=lambda: k.call(port, "/")[1].endswith("msg=changed"),
            ports=env.ports,
            secret_values=tuple(k.SECRETS.values()),
        )


# -- the cloud target, on its stand-ins ----------------------------------------------------


def _scaled(res: Resource, deployment: str, replicas: int) -> Resource:
    spec = copy.deepcopy(dict(res.spec))
    for manifest in spec["manifests"]:
        if manifest["kind"] == "Deployment" and manifest["metadata"]["name"] == deployment:
            manifest["spec"]["replicas"] = replicas
    return dataclasses.replace(res, spec=spec)


@contextmanager
def cloud_setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    request.getfixturevalue("staging_made")  # moto's EKS cluster and secrets, terraform outputs
    kube = request.getfixturevalue("kube_env")
    ctx = request.getfixturevalue("env_ctx").ctx
    desired = desired_cloud(load_matrix(EXAMPLE / "config" / "environment-matrix.yaml"), "staging")
    changed = _scaled(desired.resource("kubernetes/workloads"), "backend-deployment", 3)
    deployment = ("deployments", "sunday-staging", "backend-deployment")
    yield Setup(
        target=registry.get_target("cloud"),
        ctx=ctx,
        desired=desired,
        changed=changed,
        took_effect=lambda: kube.objects[deployment]["spec"]["replicas"] == 3,
        ports={},
        secret_values=("pg-pw", "redis-pw", "grafana-secret-value"),
    )


CASES = [Case("local", local_setup, slow=True), Case("cloud", cloud_setup)]


def test_every_target_has_a_case() -> None:
    assert sorted(c.id for c in CASES) == sorted(registry.TARGETS)


# -- the contract, written once -----------------------------------------------------------


def _actions(plan: Plan) -> dict[str, str]:
    return {step.key: step.action for step in plan.steps}


def _replan(s: Setup, desired: DesiredEnvironment, recorded: Mapping[str, Recorded]) -> Plan:
    return compute_plan(
        desired,
        recorded,
        operation="update",
        observe=lambda res: s.target.observe(s.ctx, res),
        kind_order=registry.spec(desired.target).kinds,
    )


def _with(desired: DesiredEnvironment, changed: Resource) -> DesiredEnvironment:
    resources = tuple(changed if r.key == changed.key else r for r in desired.resources)
    return dataclasses.replace(desired, resources=resources)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]
)
def test_target_lifecycle(case: Case, request: pytest.FixtureRequest) -> None:
    with case.setup(request) as s:
        target, ctx, desired = s.target, s.ctx, s.desired
        kinds = registry.spec(desired.target).kinds
        keys = [r.key for r in desired.resources]
        assert s.changed.key in keys and s.changed.digest != desired.resource(s.changed.key).digest
        target.preflight(desired)

        # Nothing there yet.
        for res in desired.resources:
            seen = target.observe(ctx, res)
            assert not seen.exists and not seen.healthy, (res.key, seen)

        # Create: every resource once, each after what it depends on.
        plan = compute_plan(desired, {}, operation="create", kind_order=kinds)
        assert sorted(_actions(plan).items()) == sorted((key, "create") for key in keys)
        order = [step.key for step in plan.steps]
        for res in desired.resources:
            assert all(order.index(dep) < order.index(res.key) for dep in res.depends_on), order
        for step in plan.steps:
            target.apply(ctx, "create", desired.resource(step.key))
        for res in desired.resources:
            seen = target.observe(ctx, res)
            assert seen.exists and seen.healthy, (res.key, seen)
        assert all(status.healthy for status in target.services(ctx, desired))
        shown = " ".join(e.url for e in target.endpoints(ctx, desired))
        assert not [value for value in s.secret_values if value in shown]

        # What was applied is recorded: planning again finds nothing to do.
        recorded = record(desired.resources)
        again = _replan(s, desired, recorded)
        assert set(_actions(again).values()) == {"noop"}, again.to_json()["steps"]

        # A changed spec: one update with its field changes, applied, then nothing to do.
        changed_desired = _with(desired, s.changed)
        update = _replan(s, changed_desired, recorded)
        assert {key: a for key, a in _actions(update).items() if a != "noop"} == {
            s.changed.key: "update"
        }
        (step,) = update.changes
        assert step.reason == "matrix or templates changed" and step.changes, step
        assert not s.took_effect()
        target.apply(ctx, "update", s.changed)
        assert s.took_effect()
        seen = target.observe(ctx, s.changed)
        assert seen.exists and seen.healthy, seen
        recorded = record(changed_desired.resources)
        assert set(_actions(_replan(s, changed_desired, recorded)).values()) == {"noop"}

        # Destroy from the record alone, in the reverse of the target's kind order.
        destroy = destroy_plan(desired.name, desired.target, recorded, kinds)
        ranks = [kinds.index(step.kind) for step in destroy.steps]
        assert ranks == sorted(ranks, reverse=True) and len(ranks) == len(keys)
        gone = []
        for step in destroy.steps:
            before = recorded[step.key]
            res = Resource(before.kind, step.name, before.spec)
            target.delete(ctx, res)
            gone.append(res)
        for res in gone:
            seen = target.observe(ctx, res)
            assert not seen.exists, (res.key, seen)
        for res in gone:  # deleting what is gone is fine
            target.delete(ctx, res)
        target.teardown(ctx)
        assert target.leftovers(ctx, s.ports) == []
        for res in gone:
            assert not target.observe(ctx, res).exists, res.key
        target.teardown(ctx)  # idempotent
