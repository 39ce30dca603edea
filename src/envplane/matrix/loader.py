"""load_matrix: file -> checked YAML -> resolved environments -> validated Matrix."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from envplane.errors import BadInput, MatrixError, UnknownEnvironment
from envplane.matrix import cloudrules, inherit, policies
from envplane.matrix.locate import Locator, first_of
from envplane.matrix.models import DeploymentStrategy, Environment, MatrixSpec, Service
from envplane.matrix.vocab import suggest
from envplane.matrix.yamlsafe import KeyPath, SourceMap, load_yaml
from envplane.names import check_env_name

MAX_BYTES = 2 * 1024 * 1024
DEFAULT_STRATEGY = DeploymentStrategy(primary="rolling")
# Templates are partial environments: what they leave out is filled in by whoever extends them.
_PARTIAL_SKIPS = frozenset({"missing", "cross_field"})


class Matrix:
    """The validated matrix. Environments are complete: `extends:` and defaults resolved."""

    def __init__(
        self, spec: MatrixSpec, path: Path, raw: dict[str, Any], lines: SourceMap, loc: Locator
    ) -> None:
        self.spec = spec
        self.path = path
        self.project: str = spec.project
        self.environments: dict[str, Environment] = dict(spec.environments)
        self.deployment_strategies: dict[str, DeploymentStrategy] = dict(spec.deployment_strategies)
        self.services: dict[str, Service] = dict(spec.services)  # top level, before overrides
        self.variables: dict[str, str] = dict(spec.variables)  # top level, before overrides
        self.templates_dir = _templates_dir(path, spec.templates_dir)
        self._raw, self._lines, self._loc = raw, lines, loc

    def __getstate__(self) -> dict[str, Any]:
        # For matrix/cache.py: where the templates are depends on directories beside the file,
        # which may come or go while the file stays the same; found again on each load.
        state = dict(self.__dict__)
        del state["templates_dir"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.templates_dir = _templates_dir(self.path, self.spec.templates_dir)

    def __repr__(self) -> str:
        envs = list(self.environments)
        return f"Matrix({str(self.path)!r}, project={self.project!r}, environments={envs})"

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise UnknownEnvironment(
                f"no environment {name!r} in {self.path}{suggest(name, self.environments)}",
                hint=f"environments in the matrix: {known}",
            ) from None

    def services_for(self, env_name: str) -> dict[str, Service]:
        """Top-level services with the environment's overrides applied."""
        return dict(self.environment(env_name).services)

    def variables_for(self, env_name: str) -> dict[str, str]:
        """Template variables: top-level values, then the environment's own."""
        return dict(self.environment(env_name).variables)

    def strategy_for(self, env_name: str) -> DeploymentStrategy:
        self.environment(env_name)
        return self.deployment_strategies.get(env_name, DEFAULT_STRATEGY)

    def pipeline(self) -> list[str]:
        """The environments releases flow through, first to last. The seed lists
        `deployment_strategies` from the pipeline's end (production) back to its start
        (development), so each environment's default upstream is the one listed after it."""
        return list(reversed(self.deployment_strategies))

    def upstream_of(self, env_name: str) -> str | None:
        """Where releases come to `env_name` from: its `promote_from`, else the environment
        before it in the pipeline; None for the first (releases are deployed there)."""
        return upstream_in(self.deployment_strategies, env_name)

    def line_of(self, key_path: KeyPath) -> int | None:
        """Line in the matrix file where `key_path` (or its nearest written ancestor) is set."""
        return self._loc.line(tuple(key_path))

    def source_of(self, key_path: KeyPath) -> tuple[KeyPath, bool]:
        """Where the resolved `key_path` is written in the file (following extends/templates),
        and whether it is written at all (False: a default, placed where it would be added)."""
        return self._loc.source(tuple(key_path))

    @property
    def raw(self) -> Mapping[str, Any]:
        """The file's document as written (before extends/templates): read-only, for
        provenance (`matrix/provenance.py`) walking each layer."""
        return self._raw

    def line_at(self, source_path: KeyPath) -> int | None:
        """Line of a path of the raw document (not resolved), if written there."""
        return self._lines.get(tuple(source_path))

    def error_at(self, key_path: KeyPath, message: str, hint: str | None = None) -> MatrixError:
        """A MatrixError located at `key_path`, for checks made outside this package."""
        return self._loc.error(tuple(key_path), message, hint)

    def with_environment(
        self, name: str, extends: str, overrides: dict[str, Any] | None = None
    ) -> Matrix:
        """This matrix plus one more environment (e.g. a preview) built from another one."""
        check_env_name(name)
        if name in self.environments:
            raise BadInput(f"environment {name!r} is already in {self.path}")
        raw = dict(self._raw)
        added = {**(overrides or {}), "extends": extends}
        raw["environments"] = {**raw["environments"], name: added}
        with collector_paused():
            return _build(raw, self._lines, self.path)


def load_matrix(path: Path, *, cache_dir: Path | None = None) -> Matrix:
    """Read and validate the matrix; every problem with the file is a MatrixError. With
    `cache_dir`, a matrix loaded before from the same text by the same code is taken from
    there (`matrix/cache.py`)."""
    text = read_matrix_text(path)
    if cache_dir is None:
        return load_matrix_text(text, str(path))
    from envplane.matrix.cache import load_cached

    return load_cached(text, str(path), cache_dir, load_matrix_text)


def read_matrix_text(path: Path) -> str:
    """The matrix file's text; a MatrixError when it cannot be read, is too large or is not
    UTF-8."""
    path = Path(path)
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MatrixError(
            "file not found", file=name, hint="pass the matrix with -f PATH or set ENVPLANE_MATRIX"
        ) from None
    except IsADirectoryError:
        raise MatrixError("is a directory, not a matrix file", file=name) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or exc
        raise MatrixError(f"cannot read the file: {reason}", file=name) from None
    if len(data) > MAX_BYTES:
        raise MatrixError(f"file is larger than {MAX_BYTES // 1024} KiB", file=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MatrixError("the file is not UTF-8 text", file=name, line=line) from None
    return text


def load_matrix_text(text: str, filename: str) -> Matrix:
    with collector_paused():
        doc, lines = load_yaml(text, filename)
        return _build(doc, lines, Path(filename))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Loading builds tens of thousands of objects, none of them garbage and none in a cycle
    (a recursive alias is refused, and freed by the next collection): without this, Python's
    cyclic collector re-scans the growing heap again and again, a third of a large matrix's
    load time (1,000 environments: 0.6 s -> 0.4 s). What was built then lives as long as the
    command, so it is frozen out of the collector's sight: otherwise the collections that the
    command's own work triggers scan it all again (1,000 environments priced: 0.19 s -> 0.11 s).
    Frozen objects are still freed by reference counting when dropped (a server reloading an
    edited matrix); only a cycle among them would outlive it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def _build(doc: dict[str, Any], lines: SourceMap, path: Path) -> Matrix:
    filename = str(path)
    plain = Locator(filename, lines)
    resolved, trace = inherit.resolve(doc, plain.error)
    loc = Locator(filename, lines, trace)
    errors: list[MatrixError] = []
    spec: MatrixSpec | None = None
    try:
        spec = MatrixSpec.model_validate(resolved)
    except ValidationError as exc:
        errors += loc.from_validation(exc, MatrixSpec)
    errors += _check_templates(doc, plain)
    if spec is not None:
        errors += _cross_checks(spec, loc)
        errors += cloudrules.check(spec.environments, loc.error)
    if errors or spec is None:
        raise first_of(errors)
    return Matrix(spec, path, doc, lines, loc)


def _check_templates(doc: dict[str, Any], loc: Locator) -> list[MatrixError]:
    templates = doc.get("templates")
    errors: list[MatrixError] = []
    for name, body in templates.items() if isinstance(templates, dict) else []:
        if isinstance(body, dict):
            try:
                Environment.model_validate(body)
            except ValidationError as exc:
                errors += loc.from_validation(exc, Environment, ("templates", name), _PARTIAL_SKIPS)
    return errors


def _cross_checks(spec: MatrixSpec, loc: Locator) -> list[MatrixError]:
    """Relations between sections that no single model can see."""
    errors: list[MatrixError] = []
    for name in spec.deployment_strategies:
        if name not in spec.environments:
            errors.append(
                loc.error(
                    ("deployment_strategies", name),
                    f"no environment named {name!r}{suggest(name, spec.environments)}",
                    f"environments: {', '.join(spec.environments)}",
                )
            )
    errors += _pipeline_checks(spec, loc)
    errors += policies.check_rules(spec, loc.error)
    for env_name, env in spec.environments.items():
        errors += _depends_checks(env_name, env.services, loc)
        regions = {env.regions.primary, env.regions.secondary}
        seen: set[str] = set()
        for i, cluster in enumerate(env.clusters):
            at: KeyPath = ("environments", env_name, "clusters", i)
            if cluster.region not in regions:
                errors.append(
                    loc.error(
                        (*at, "region"),
                        f"cluster region {cluster.region!r} is "
                        "neither the primary nor the secondary region",
                        "add it under `regions:` or move the cluster",
                    )
                )
            if cluster.name in seen:
                errors.append(
                    loc.error(
                        (*at, "name"),
                        f"cluster name {cluster.name!r} is used twice in this environment",
                    )
                )
            seen.add(cluster.name)
    return errors


def upstream_in(strategies: Mapping[str, DeploymentStrategy], env_name: str) -> str | None:
    """Where releases come to `env_name` from: its `promote_from`, else the environment listed
    after it in `deployment_strategies` (the pipeline runs from the listing's end); None for
    the first, and for environments outside the pipeline."""
    strategy = strategies.get(env_name)
    if strategy is None:
        return None  # outside the pipeline (clones, previews): deploy only
    if strategy.promote_from is not None:
        return strategy.promote_from
    order = list(reversed(list(strategies)))
    at = order.index(env_name)
    return order[at - 1] if at > 0 else None


def _pipeline_checks(spec: MatrixSpec, loc: Locator) -> list[MatrixError]:
    """`promote_from` names another environment, and following it never comes back."""
    errors: list[MatrixError] = []
    strategies = spec.deployment_strategies
    for name, strategy in strategies.items():
        source = strategy.promote_from
        if source is None:
            continue
        at: KeyPath = ("deployment_strategies", name, "promote_from")
        if source == name:
            errors.append(loc.error(at, "an environment cannot be promoted from itself"))
        elif source not in spec.environments:
            errors.append(
                loc.error(
                    at,
                    f"no environment named {source!r}{suggest(source, spec.environments)}",
                    f"environments: {', '.join(spec.environments)}",
                )
            )
        else:
            # Each step follows what promote actually follows: promote_from, else the
            # environment before in the pipeline (a loop can close through a default).
            seen = [name]
            current: str | None = source
            while current is not None and current not in seen:
                seen.append(current)
                current = upstream_in(strategies, current)
            if current is not None and current == name:
                loop = " -> ".join([*seen, name])
                errors.append(loc.error(at, f"promotion loops back: {loop}"))
    return errors


def _depends_checks(env_name: str, services: dict[str, Any], loc: Locator) -> list[MatrixError]:
    """A service depends only on services of its environment, and not in a circle."""
    errors: list[MatrixError] = []
    for name, service in services.items():
        for i, other in enumerate(service.depends_on):
            if other not in services or other == name:
                errors.append(
                    loc.error(
                        ("environments", env_name, "services", name, "depends_on", i),
                        f"service {name!r} depends on {other!r}, which is "
                        + ("itself" if other == name else "not a service of this environment"),
                    )
                )
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name not in services:
            return
        if name in visiting:
            errors.append(
                loc.error(
                    ("environments", env_name, "services", name, "depends_on"),
                    f"services depend on each other in a circle: {' -> '.join((*path, name))}",
                )
            )
            return
        visiting.add(name)
        for other in services[name].depends_on:
            if other != name:
                visit(other, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in services:
        visit(name, ())
    return errors


def _templates_dir(path: Path, configured: str | None) -> Path:
    base = path.absolute().parent
    if configured is not None:
        return base / configured
    local = base / "templates"
    return local if local.is_dir() else base.parent / "templates"
