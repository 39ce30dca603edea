"""`envplane drift` of a cloud environment, read-only: Terraform's own drift detection and the
live Kubernetes objects against the rendered ones.

* Terraform: `plan -detailed-exitcode -lock=false` into a plan file outside the working
  directory (exit 2 is drift), then `show -json` of it: each resource Terraform found changed
  outside it (`resource_drift`) and each it would change (`resource_changes`), field by field.
* Kubernetes: each rendered object is server-side applied as a dry run (nothing is stored),
  which gives the object as envplane's apply would leave it, normalised by the server the
  same way as the live one; every field the manifest sets that differs from the live object
  is drift, and the live object's managedFields say which field manager set it."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import DriftItem, EnvContext, Observed
from envplane.targets.cloud import apps, configsync, infra
from envplane.targets.cloud.kube import FIELD_MANAGER, KubeClient
from envplane.targets.cloud.terraform import Terraform
from envplane.targets.cloud.tools import run

MASK = "***"
SECRET_RE = re.compile(r"password|secret|token|private_key|credential", re.IGNORECASE)
SHOWN = 120  # characters of a value shown
Path_ = tuple[str | int, ...]


def cloud_drift(ctx: EnvContext, desired: DesiredEnvironment) -> list[DriftItem]:
    items: list[DriftItem] = []
    for res in desired.resources:
        if res.kind == "terraform":
            items += terraform_drift(ctx, res)
        elif res.kind == "kubernetes":
            items += kubernetes_drift(ctx, res)
    return items


# -- values -----------------------------------------------------------------------------------


def _leaves(value: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    """Every leaf of a JSON value by its path (lists by index; an empty map or list is a leaf)."""
    if isinstance(value, Mapping) and value:
        out: dict[Path_, Any] = {}
        for key in value:
            out.update(_leaves(value[key], (*prefix, str(key))))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, (*prefix, index)))
        return out
    return {prefix: value}


def _at(value: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def _dotted(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _shown(path: Path_, value: Any, sensitive: bool = False) -> str:
    if value is None:
        return "(absent)"
    if sensitive or any(isinstance(p, str) and SECRET_RE.search(p) for p in path):
        return MASK
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


# -- Terraform --------------------------------------------------------------------------------


def terraform_drift(ctx: EnvContext, res: Resource) -> list[DriftItem]:
    tf = Terraform(infra.workdir(ctx), ctx.progress)
    if not tf.initialised:
        return [DriftItem(res.key, "working directory", "initialised", "missing")]
    with tempfile.TemporaryDirectory(prefix="envplane-drift-") as tmp:
        out = Path(tmp) / "drift.tfplan"
        argv = [tf.binary, "plan", "-input=false", "-lock=false", "-no-color"]
        planned = run(
            [*argv, "-detailed-exitcode", f"-out={out}"],
            cwd=tf.workdir,
            env=tf.env,
            timeout=tf.timeout,
        )
        if planned.returncode == 0:
            return []
        if planned.returncode != 2:
            raise OperationFailed(f"{tf.name} plan failed: {planned.tail()}")
        shown = run([tf.binary, "show", "-json", str(out)], cwd=tf.workdir, env=tf.env, timeout=300)
    try:
        plan = json.loads(shown.stdout)
    except ValueError:
        raise OperationFailed(f"{tf.name} show -json printed no JSON: {shown.tail()}") from None
    items = _terraform_items(res.key, plan.get("resource_drift") or [], "changed outside Terraform")
    items += _terraform_items(res.key, plan.get("resource_changes") or [], None)
    if not items:  # exit 2 with nothing itemised (outputs only, say): still drift
        items.append(DriftItem(res.key, "terraform plan", "no changes", "changes planned"))
    return items


def _terraform_items(key: str, entries: list[Any], changed_by: str | None) -> list[DriftItem]:
    """For drift (`changed_by` set) `before` is what the state recorded and `after` the world;
    for a planned change `before` is the world (refreshed) and `after` the configuration."""
    items: list[DriftItem] = []
    for entry in entries:
        change = entry.get("change") or {}
        actions = [a for a in change.get("actions") or [] if a not in ("no-op", "read")]
        if not actions:
            continue
        resource = f"{key}/{entry.get('address', '?')}"
        before, after = change.get("before"), change.get("after")
        recorded, world = (before, after) if changed_by else (after, before)
        hidden = _leaves(change.get("before_sensitive") or {}) | _leaves(
            change.get("after_sensitive") or {}
        )
        if not isinstance(recorded, Mapping) or not isinstance(world, Mapping):
            items.append(
                DriftItem(
                    resource, "/".join(actions), _shown((), recorded), _shown((), world), changed_by
                )
            )
            continue
        a, b = _leaves(recorded), _leaves(world)
        unknown = [p for p, v in _leaves(change.get("after_unknown") or {}).items() if v is True]
        for path in sorted(set(a) | set(b), key=_dotted):
            if any(path[: len(u)] == u for u in unknown):
                continue  # known only after apply (an output following an input)
            if a.get(path) != b.get(path):
                secret = hidden.get(path) is True
                items.append(
                    DriftItem(
                        resource,
                        _dotted(path),
                        _shown(path, a.get(path), secret),
                        _shown(path, b.get(path), secret),
                        changed_by,
                    )
                )
    return items


# -- Kubernetes -------------------------------------------------------------------------------


def _manifests(ctx: EnvContext, res: Resource) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = list(res.spec["manifests"])
    outputs = infra.outputs(ctx) if apps.placeholders(manifests) else {}
    return list(apps.resolve(manifests, outputs))


def kubernetes_drift(ctx: EnvContext, res: Resource) -> list[DriftItem]:
    kube = apps.client(ctx, res.spec)
    items: list[DriftItem] = []
    for manifest in _manifests(ctx, res):
        items += _object_drift(kube, manifest)
    return items


def _object_drift(kube: KubeClient, manifest: dict[str, Any]) -> list[DriftItem]:
    kind, meta = str(manifest["kind"]), manifest["metadata"]
    namespace = meta.get("namespace")
    where = f"{namespace}/" if namespace else ""
    resource = f"kubernetes/{kind}/{where}{meta['name']}"
    live = kube.get(kind, str(meta["name"]), namespace)
    if live is None:
        return [DriftItem(resource, "object", "exists", "missing")]
    try:
        wanted = kube.apply(manifest, force=True, dry_run=True)
    except OperationFailed as exc:
        return [DriftItem(resource, "server-side apply (dry run)", "accepted", exc.message)]
    items = []
    for path in sorted(_leaves(_compared(manifest)), key=_dotted):
        want, have = _at(wanted, path), _at(live, path)
        if want != have:
            items.append(
                DriftItem(
                    resource,
                    _dotted(path),
                    _shown(path, want),
                    _shown(path, have),
                    _owner(live, path),
                )
            )
    return items


def _compared(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What envplane sets of an object: everything but its identity."""
    meta = manifest.get("metadata") or {}
    out = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    return {**out, "metadata": kept} if kept else out


def _owner(live: Mapping[str, Any], path: Path_) -> str | None:
    """The field manager that owns `path` in the live object (another than envplane's when
    several do: that is who changed it), from its managedFields."""
    owners = [
        str(entry.get("manager"))
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if _owns(entry.get("fieldsV1") or {}, live, path)
    ]
    others = [o for o in owners if o != FIELD_MANAGER]
    chosen = others or owners
    return chosen[0] if chosen else None


def _owns(fields: Mapping[str, Any], value: Any, path: Path_) -> bool:
    """Whether a fieldsV1 set holds `path` (or an atomic parent of it) of object `value`."""
    node: Any = fields
    for part in path:
        if not isinstance(node, Mapping):
            return False
        if not node:
            return True  # an atomic value (a list of strings, say) owned as a whole
        if isinstance(part, str):
            node, value = (
                node.get(f"f:{part}"),
                value.get(part) if isinstance(value, Mapping) else None,
            )
            if node is None:
                return False
            continue
        item = value[part] if isinstance(value, list) and part < len(value) else None
        node, value = _list_item(node, item), item
        if node is None:
            return False
    return isinstance(node, Mapping)


def _list_item(node: Mapping[str, Any], item: Any) -> Any:
    """The fieldsV1 entry of one list element: `k:{merge keys}` matching it, or `v:value`."""
    for key, sub in node.items():
        if key.startswith("k:") and isinstance(item, Mapping):
            try:
                keys = json.loads(key[2:])
            except ValueError:
                continue
            if all(item.get(k) == v for k, v in keys.items()):
                return sub
        elif key.startswith("v:"):
            try:
                if json.loads(key[2:]) == item:
                    return sub
            except ValueError:
                continue
    return None


# -- drift to the planner, and its repair -----------------------------------------------------

# Resources the planner was told drifted, by (environment directory, resource key) -> the
# digest of the rendering that was compared. The planner observes only a resource whose
# rendering is the one envplane applied last, so an apply of that same rendering in this
# process is a drift repair: `take_back` forces what another field manager changed. A resume
# in another process plans again, which observes again. Any other apply (a matrix change, a
# config sync) is not in here and keeps ConfigMaps' conflicts (apps.py).
_REPORTED: dict[tuple[str, str], str] = {}
LISTED = 3  # drifted fields named in the plan's reason


def observed(ctx: EnvContext, res: Resource, seen: Observed) -> Observed:
    """`seen` (the resource exists and is healthy), or unhealthy naming the fields that drifted
    from the rendering, so that `update` applies the resource again."""
    compare = {"terraform": terraform_drift, "kubernetes": kubernetes_drift}.get(res.kind)
    if compare is None:
        return seen
    key = (str(ctx.env_dir), res.key)
    try:
        items = compare(ctx, res)
    except OperationFailed as exc:
        # Not knowable (a failing plan, Terraform outputs the manifests need are gone): the
        # apply that follows fails with the same cause, in its step, rather than the plan.
        _REPORTED.pop(key, None)
        return Observed(True, False, f"drift not compared: {exc.message}", info=seen.info)
    if not items:
        _REPORTED.pop(key, None)
        return seen
    _REPORTED[key] = res.digest
    named = [
        f"{i.resource.removeprefix(res.key + '/').removeprefix(res.kind + '/')} {i.field}"
        + (f" (by {i.changed_by})" if i.changed_by and i.changed_by != FIELD_MANAGER else "")
        for i in items[:LISTED]
    ]
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return Observed(True, False, f"drifted: {', '.join(named)}{more}", info=seen.info)


def take_back(ctx: EnvContext, res: Resource) -> None:
    """Before the workloads' apply that repairs reported drift: say whose change each drifted
    field overrides, force the ConfigMaps that drifted (applied without force they would be a
    conflict: `kubectl apply --server-side --force-conflicts`), and restart the Deployments
    that read them, as a changed configuration does. Other objects are forced by the apply."""
    if _REPORTED.pop((str(ctx.env_dir), res.key), None) != res.digest:
        return
    kube = apps.client(ctx, res.spec)
    manifests = _manifests(ctx, res)
    drifted: dict[str, list[DriftItem]] = {}
    for manifest in manifests:
        for item in _object_drift(kube, manifest):
            drifted.setdefault(item.resource, []).append(item)
            if item.changed_by and item.changed_by != FIELD_MANAGER:
                ctx.progress(
                    f"{item.resource} {item.field}: overriding {item.changed_by}'s change "
                    f"({item.actual} -> {item.expected})"
                )
    ns = str(res.spec["namespace"])
    config_maps = set()
    for manifest in manifests:
        name = str(manifest["metadata"]["name"])
        if manifest["kind"] == "ConfigMap" and f"kubernetes/ConfigMap/{ns}/{name}" in drifted:
            kube.apply(manifest, force=True)
            config_maps.add(name)
    existed = {
        str(m["metadata"]["name"])
        for m in manifests
        if m["kind"] == "Deployment" and kube.get("Deployment", str(m["metadata"]["name"]), ns)
    }
    for name in configsync.to_restart(manifests, config_maps, existed):
        configsync.restart(kube, ns, name)
