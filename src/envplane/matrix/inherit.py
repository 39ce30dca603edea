"""`extends:`, templates and defaults, resolved on the raw YAML data before validation.

Resolving first means pydantic sees each environment whole; an `Origin` map remembers where
each merged piece came from, so an error in an inherited value still names the file line
where that value is written (e.g. in `templates.base`), not the environment that inherits it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from envplane.matrix.vocab import PROJECT_RE, suggest
from envplane.matrix.yamlsafe import KeyPath

# Resolved path prefix -> source path prefix; looked up by longest prefix.
Origin = dict[KeyPath, KeyPath]
Fail = Callable[[KeyPath, str, str | None], Exception]


def lookup(origin: Origin, path: KeyPath) -> KeyPath:
    """The source path of a resolved path."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in origin:
            return origin[path[:cut]] + path[cut:]
    return path


def merge(parent: Any, p_origin: Origin, child: Any, c_origin: Origin) -> tuple[Any, Origin]:
    """Deep-merge mappings, child wins; lists and scalars are replaced whole."""
    out_origin: Origin = {}

    def take(origin: Origin, at: KeyPath) -> None:
        out_origin[at] = lookup(origin, at)
        for key, src in origin.items():
            if len(key) > len(at) and key[: len(at)] == at:
                out_origin[key] = src

    def walk(p: Any, c: Any, at: KeyPath) -> Any:
        if not (isinstance(p, dict) and isinstance(c, dict)):
            take(c_origin, at)
            return copy.deepcopy(c)
        out_origin[at] = lookup(c_origin, at)
        out: dict[str, Any] = {}
        for key, value in p.items():
            if key in c:
                out[key] = walk(value, c[key], (*at, key))
            else:
                take(p_origin, (*at, key))
                out[key] = copy.deepcopy(value)
        for key, value in c.items():
            if key not in p:
                take(c_origin, (*at, key))
                out[key] = copy.deepcopy(value)
        return out

    return walk(parent, child, ()), out_origin


def resolve(doc: dict[str, Any], fail: Fail) -> tuple[dict[str, Any], Origin]:
    """A copy of `doc` with every environment complete, and where each part came from."""
    envs = doc.get("environments")
    if not isinstance(envs, dict):
        return doc, {(): ()}  # pydantic will say what is wrong with it
    templates = doc.get("templates")
    templates = templates if isinstance(templates, dict) else {}
    for name in templates:
        if name in envs:
            raise fail(
                ("templates", name),
                f"template {name!r} has the name of an environment",
                "rename one: `extends:` must know which one it means",
            )

    resolver = _Resolver(envs, templates, fail)
    resolved = dict(doc)
    resolved_envs: dict[str, Any] = {}
    doc_origin: Origin = {(): ()}
    for name, raw in envs.items():
        if not isinstance(raw, dict):
            resolved_envs[name] = raw
            continue
        data, origin = resolver.environment(name)
        data, origin = _with_top_level(doc, name, dict(data), origin, fail)
        _fill_clusters(data, _project(doc), name)
        resolved_envs[name] = data
        for rel, src in origin.items():
            doc_origin[("environments", name, *rel)] = src
    resolved["environments"] = resolved_envs
    return resolved, doc_origin


class _Resolver:
    def __init__(self, envs: dict[str, Any], templates: dict[str, Any], fail: Fail) -> None:
        self.envs, self.templates, self.fail = envs, templates, fail
        self.done: dict[KeyPath, tuple[dict[str, Any], Origin]] = {}

    def environment(self, name: str) -> tuple[dict[str, Any], Origin]:
        return self._resolve(("environments", name), [])

    def _resolve(self, where: KeyPath, chain: list[KeyPath]) -> tuple[dict[str, Any], Origin]:
        if where in self.done:
            return self.done[where]
        source = self.envs if where[0] == "environments" else self.templates
        raw = source[str(where[1])]
        data: dict[str, Any] = dict(raw)
        origin: Origin = {(): where}
        parent_name = raw.get("extends")
        if parent_name is not None:
            parent = self._parent(where, parent_name, chain)
            p_data, p_origin = self._resolve(parent, [*chain, where])
            data, origin = merge(p_data, p_origin, data, origin)
        if where[0] == "environments":
            # An environment's templates are its own, unless it extends one that names others.
            data.setdefault("template", where[1])
        self.done[where] = (data, origin)
        return data, origin

    def _parent(self, where: KeyPath, name: object, chain: list[KeyPath]) -> KeyPath:
        at = (*where, "extends")
        if not isinstance(name, str):
            raise self.fail(at, "`extends` must name an environment or a template", None)
        if name in self.envs:
            parent: KeyPath = ("environments", name)
        elif name in self.templates:
            parent = ("templates", name)
        else:
            known = [*self.envs, *self.templates]
            raise self.fail(
                at,
                f"{name!r} is neither an environment nor a template{suggest(name, known)}",
                f"known: {', '.join(known)}",
            )
        if parent == where or parent in chain:
            loop = [str(p[1]) for p in [*chain, where, parent]]
            raise self.fail(
                at,
                f"`extends` goes round in a circle: {' -> '.join(loop)}",
                "break the cycle by letting one of them extend nothing",
            )
        source = self.envs if parent[0] == "environments" else self.templates
        if not isinstance(source[name], dict):
            raise self.fail(at, f"cannot extend {name!r}: it is not a mapping", None)
        return parent


def _with_top_level(
    doc: dict[str, Any], env: str, data: dict[str, Any], origin: Origin, fail: Fail
) -> tuple[dict[str, Any], Origin]:
    """Merge the top-level `services:` and `variables:` under the environment's own."""
    for key in ("services", "variables"):
        top = doc.get(key, {})
        own = data.get(key, {})
        if not isinstance(top, dict) or not isinstance(own, dict):
            continue  # pydantic reports the wrong type at its own place
        if key == "services":
            for name in own:
                if name not in top:
                    raise fail(
                        lookup(origin, ("services", name)),
                        f"service {name!r} is not declared under the top-level "
                        f"`services:`{suggest(name, top)}",
                        "declare it at the top level first; environments only override",
                    )
        own_origin: Origin = {(): lookup(origin, (key,))}
        top_origin: Origin = {(): (key,)}
        merged, m_origin = merge(top, top_origin, own, own_origin)
        data = {**data, key: merged}
        origin = {k: v for k, v in origin.items() if k[:1] != (key,)}
        origin.update({(key, *k): v for k, v in m_origin.items()})
    return data, origin


def _project(doc: dict[str, Any]) -> str:
    # A bad project name is reported at `project:`; clusters are named with the default.
    project = doc.get("project")
    return project if isinstance(project, str) and PROJECT_RE.fullmatch(project) else "envplane"


def _fill_clusters(data: dict[str, Any], project: str, env: str) -> None:
    """Unnamed clusters are named `<project>-<environment>`; they run in the primary region."""
    clusters = data.get("clusters")
    regions = data.get("regions")
    primary = regions.get("primary") if isinstance(regions, dict) else None
    if not isinstance(clusters, list):
        return
    filled = []
    for cluster in clusters:
        if isinstance(cluster, dict):
            cluster = dict(cluster)
            if "name" not in cluster:
                cluster["name"] = f"{project}-{env}"
            if "region" not in cluster and primary is not None:
                cluster["region"] = primary
        filled.append(cluster)
    data["clusters"] = filled
