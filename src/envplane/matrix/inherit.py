"""`extends:`, templates and defaults, resolved on the raw YAML data before validation.

Resolving first means pydantic sees each environment whole; an `Origin` map remembers where
each merged piece came from, so an error in an inherited value still names the file line
where that value is written (e.g. in `templates.base`), not the environment that inherits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from envplane.matrix.vocab import PROJECT_RE, suggest
from envplane.matrix.yamlsafe import KeyPath

# Resolved path prefix -> source path prefix; looked up by longest prefix.
Origin = dict[KeyPath, KeyPath]
Fail = Callable[[KeyPath, str, str | None], Exception]


class Trace(NamedTuple):
    """Where the parts of a resolved value come from.

    `origin`: resolved path prefix -> the source path where it was last written (the child
    wins). `bases`: resolved path of a mapping that was merged from several layers -> the
    source path of its first layer (where it is declared: `services.web` under an
    environment's override of it, `templates.base.databases` under a child's), so that a key
    written in no layer can be reported where it would be added."""

    origin: Origin
    bases: Origin

    @staticmethod
    def at(source: KeyPath) -> Trace:
        return Trace({(): source}, {})


def lookup(origin: Origin, path: KeyPath) -> KeyPath:
    """The source path of a resolved path."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in origin:
            return origin[path[:cut]] + path[cut:]
    return path


def merge(parent: Any, p_trace: Trace, child: Any, c_trace: Trace) -> tuple[Any, Trace]:
    """Deep-merge mappings, child wins; lists and scalars are replaced whole.

    Values are shared, not copied: nothing downstream mutates the resolved data (what fills in
    defaults makes its own copies), and a long `extends:` chain stays linear."""
    origin: Origin = {}
    bases: Origin = {}
    from_parent: set[KeyPath] = set()  # roots of subtrees taken whole from one side
    from_child: set[KeyPath] = set()

    def walk(p: Any, c: Any, at: KeyPath) -> Any:
        if not (isinstance(p, dict) and isinstance(c, dict)):
            from_child.add(at)
            return c
        origin[at] = lookup(c_trace.origin, at)
        bases[at] = p_trace.bases[at] if at in p_trace.bases else lookup(p_trace.origin, at)
        out: dict[str, Any] = {}
        for key, value in p.items():
            if key in c:
                out[key] = walk(value, c[key], (*at, key))
            else:
                from_parent.add((*at, key))
                out[key] = value
        for key, value in c.items():
            if key not in p:
                from_child.add((*at, key))
                out[key] = value
        return out

    merged = walk(parent, child, ())
    for trace, roots in ((p_trace, from_parent), (c_trace, from_child)):
        for root in roots:
            origin[root] = lookup(trace.origin, root)
        # One pass over each side's entries (not one per key taken): a path inside a subtree
        # taken whole keeps where it came from.
        sizes = {len(root) for root in roots}
        for mine, theirs in ((origin, trace.origin), (bases, trace.bases)):
            for key, source in theirs.items():
                for size in sizes:  # (a key shorter than `size` is compared whole)
                    if key[:size] in roots:
                        mine[key] = source
                        break
    return merged, Trace(origin, bases)


def resolve(doc: dict[str, Any], fail: Fail) -> tuple[dict[str, Any], Trace]:
    """A copy of `doc` with every environment complete, and where each part came from."""
    envs = doc.get("environments")
    if not isinstance(envs, dict):
        return doc, Trace.at(())  # pydantic will say what is wrong with it
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
    doc_trace = Trace.at(())
    for name, raw in envs.items():
        if not isinstance(raw, dict):
            resolved_envs[name] = raw
            continue
        data, trace = resolver.environment(name)
        data, trace = _with_top_level(doc, name, dict(data), trace, fail)
        trace = Trace(dict(trace.origin), trace.bases)  # the resolver's own stays as it is
        _fill_clusters(data, _project(doc), name, trace.origin)
        resolved_envs[name] = data
        for mine, theirs in zip(doc_trace, trace, strict=True):
            for rel, src in theirs.items():
                mine[("environments", name, *rel)] = src
    resolved["environments"] = resolved_envs
    return resolved, doc_trace


class _Resolver:
    def __init__(self, envs: dict[str, Any], templates: dict[str, Any], fail: Fail) -> None:
        self.envs, self.templates, self.fail = envs, templates, fail
        self.done: dict[KeyPath, tuple[dict[str, Any], Trace]] = {}

    def environment(self, name: str) -> tuple[dict[str, Any], Trace]:
        return self._resolve(("environments", name), [])

    def _resolve(self, where: KeyPath, chain: list[KeyPath]) -> tuple[dict[str, Any], Trace]:
        if where in self.done:
            return self.done[where]
        source = self.envs if where[0] == "environments" else self.templates
        raw = source[str(where[1])]
        data: dict[str, Any] = dict(raw)
        trace = Trace.at(where)
        parent_name = raw.get("extends")
        if parent_name is not None:
            parent = self._parent(where, parent_name, chain)
            p_data, p_trace = self._resolve(parent, [*chain, where])
            data, trace = merge(p_data, p_trace, data, trace)
        if where[0] == "environments" and "template" not in data:
            # An environment's templates are its own, unless it extends one that names others;
            # the default is "written" where the environment's name is.
            data["template"] = where[1]
            trace.origin[("template",)] = where
        self.done[where] = (data, trace)
        return data, trace

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
    doc: dict[str, Any], env: str, data: dict[str, Any], trace: Trace, fail: Fail
) -> tuple[dict[str, Any], Trace]:
    """Merge the top-level `services:` and `variables:` under the environment's own."""
    parts: dict[str, Trace] = {}
    for key in ("services", "variables"):
        top, own = doc.get(key, {}), data.get(key, {})
        if not isinstance(top, dict) or not isinstance(own, dict):
            continue  # pydantic reports the wrong type at its own place
        if key == "services":
            for name in own:
                if name not in top:
                    raise fail(
                        lookup(trace.origin, ("services", name)),
                        f"service {name!r} is not declared under the top-level "
                        f"`services:`{suggest(name, top)}",
                        "declare it at the top level first; environments only override",
                    )
        parts[key] = Trace({(): lookup(trace.origin, (key,))}, {})
    if not parts:
        return data, trace
    # One pass: the environment's own `services`/`variables` keep every source they had (a
    # template's, a parent's); the rest of the trace stays as it is.
    rest = Trace({}, {})
    for mine, theirs, side in ((rest.origin, trace.origin, 0), (rest.bases, trace.bases, 1)):
        for path, source in theirs.items():
            part = parts.get(path[0]) if path and isinstance(path[0], str) else None
            if part is None:
                mine[path] = source
            else:
                part[side][path[1:]] = source
    data = dict(data)
    for key, own_trace in parts.items():
        merged, m_trace = merge(doc.get(key, {}), Trace.at((key,)), data.get(key, {}), own_trace)
        data[key] = merged
        for mine, theirs in zip(rest, m_trace, strict=True):
            mine.update({(key, *path): source for path, source in theirs.items()})
    return data, rest


def _project(doc: dict[str, Any]) -> str:
    # A bad project name is reported at `project:`; clusters are named with the default.
    project = doc.get("project")
    return project if isinstance(project, str) and PROJECT_RE.fullmatch(project) else "envplane"


def _fill_clusters(data: dict[str, Any], project: str, env: str, origin: Origin) -> None:
    """Unnamed clusters are named `<project>-<environment>`; they run in the primary region.
    Each filled-in value is located where what it is made from is written."""
    clusters = data.get("clusters")
    regions = data.get("regions")
    primary = regions.get("primary") if isinstance(regions, dict) else None
    if not isinstance(clusters, list):
        return
    filled = []
    for index, cluster in enumerate(clusters):
        if isinstance(cluster, dict):
            cluster = dict(cluster)
            if "name" not in cluster:
                cluster["name"] = f"{project}-{env}"
                origin[("clusters", index, "name")] = ("environments", env)
            if "region" not in cluster and primary is not None:
                cluster["region"] = primary
                origin[("clusters", index, "region")] = lookup(origin, ("regions", "primary"))
        filled.append(cluster)
    data["clusters"] = filled
