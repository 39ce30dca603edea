"""Compare desired resources with what the store recorded and the target observes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from envplane.plan.model import Change, Plan, Step
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import Observed


class Recorded(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def spec(self) -> Any: ...


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
        # Lists of records diff per element ("jobs[0].targets"), so a change reads as one line.
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def spec_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    a, b = flatten(old), flatten(new)
    return tuple(
        Change(path, a.get(path), b.get(path))
        for path in sorted(set(a) | set(b))
        if a.get(path) != b.get(path)
    )


def ordered(resources: tuple[Resource, ...]) -> list[Resource]:
    """Dependencies first; ties keep the order the renderer gave (stable, deterministic)."""
    by_key = {r.key: r for r in resources}
    done: set[str] = set()
    out: list[Resource] = []

    def visit(res: Resource, trail: tuple[str, ...]) -> None:
        if res.key in done:
            return
        if res.key in trail:
            raise ValueError(f"dependency cycle: {' -> '.join((*trail, res.key))}")
        for dep in res.depends_on:
            if dep in by_key:
                visit(by_key[dep], (*trail, res.key))
        done.add(res.key)
        out.append(res)

    for res in resources:
        visit(res, ())
    return out


def _contents(res: Resource) -> tuple[str, ...]:
    """Sub-objects a resource manages as one step: Terraform addresses, Kubernetes objects."""
    listed = res.spec.get("resources") or res.spec.get("objects") or ()
    return tuple(str(item) for item in listed) if isinstance(listed, list | tuple) else ()


def kind_rank(key: str, kind_order: Sequence[str]) -> int:
    """Where a resource key's kind stands in `kind_order` (the target's kinds in creation
    order; deletion runs in reverse); a kind it does not list comes last."""
    kind = key.split("/", 1)[0]
    return kind_order.index(kind) if kind in kind_order else len(kind_order)


def compute_plan(
    desired: DesiredEnvironment,
    recorded: Mapping[str, Recorded],
    *,
    operation: str,
    observe: Callable[[Resource], Observed] | None = None,
    new_ports: dict[str, int] | None = None,
    kind_order: Sequence[str] = (),
) -> Plan:
    """`kind_order` is the target's kinds in creation order: recorded resources the desired
    state no longer has are deleted in its reverse. Only needed when something is recorded."""
    steps: list[Step] = []
    wanted = ordered(desired.resources)
    for res in wanted:
        before = recorded.get(res.key)
        if before is None:
            steps.append(Step("create", res.key, "not yet created", contains=_contents(res)))
            continue
        if before.digest != res.digest:
            changes = spec_changes(before.spec or {}, res.spec)
            steps.append(Step("update", res.key, "matrix or templates changed", changes))
            continue
        seen = observe(res) if observe else None
        if seen is not None and not (seen.exists and seen.healthy):
            what = "missing" if not seen.exists else "unhealthy"
            reason = f"drift: {what}" + (f" ({seen.detail})" if seen.detail else "")
            steps.append(Step("update", res.key, reason))
        else:
            steps.append(Step("noop", res.key, "up to date"))
    gone = sorted(
        (k for k in recorded if k not in {r.key for r in wanted}),
        key=lambda key: kind_rank(key, kind_order),
        reverse=True,
    )
    steps.extend(Step("delete", key, "no longer in the matrix") for key in gone)
    return Plan(
        environment=desired.name,
        target=desired.target,
        operation=operation,
        steps=tuple(steps),
        notes=desired.notes,
        new_ports=dict(new_ports or {}),
    )


def destroy_plan(
    environment: str, target: str, recorded: Mapping[str, Recorded], kind_order: Sequence[str]
) -> Plan:
    """Delete every recorded resource, in the reverse of the target's `kind_order`."""
    keys = sorted(recorded, key=lambda key: kind_rank(key, kind_order), reverse=True)
    return Plan(
        environment=environment,
        target=target,
        operation="destroy",
        steps=tuple(Step("delete", key, "environment destroyed") for key in keys),
    )
