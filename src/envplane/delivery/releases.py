"""Releases: immutable, recorded sets of service versions, and what each environment runs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from envplane.desired import running_services
from envplane.errors import BadInput
from envplane.matrix.models import VERSION_RE, Service
from envplane.matrix.vocab import suggest
from envplane.render.model import canonical_json
from envplane.render.templates import template_files

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.state.records import ReleaseRecord
    from envplane.workspace import Workspace


def all_services(matrix: Matrix) -> dict[str, Service]:
    """Every service a release can name: the top level's, then those only environments add."""
    found = dict(matrix.services)
    for env in matrix.environments:
        for name, service in matrix.services_for(env).items():
            found.setdefault(name, service)
    return found


def check_version(name: str, service: Service, version: str) -> str:
    if not VERSION_RE.fullmatch(version):
        raise BadInput(
            f"invalid version {version!r} for service {name}: up to 64 characters from "
            "letters, digits and '.', '_', '+', '-'"
        )
    if service.versions and version not in service.versions:
        known = ", ".join(service.versions)
        raise BadInput(
            f"service {name} has no version {version!r}{suggest(version, service.versions)}",
            hint=f"its `versions:` in the matrix: {known}",
        )
    return version


def parse_pins(pins: Sequence[str]) -> dict[str, str]:
    """`NAME=VERSION` arguments as a mapping; a malformed or repeated one is bad input."""
    out: dict[str, str] = {}
    for pin in pins:
        name, sep, version = pin.partition("=")
        if not sep or not name or not version:
            raise BadInput(f"--service {pin!r}: write NAME=VERSION, like backend=1.1.0")
        if name in out:
            raise BadInput(f"--service {name} is given twice")
        out[name] = version
    return out


def config_digest(matrix: Matrix, versions: Mapping[str, str]) -> str:
    """What a release's versions run, as one digest: each service's definition for its
    version and every config template file's content. Two releases with one digest run the
    same code with the same configuration."""
    services = all_services(matrix)
    body: dict[str, object] = {}
    for name, version in sorted(versions.items()):
        service = services[name]
        variant = service.versions.get(version)
        body[name] = {
            "version": version,
            "service": service.model_dump(mode="json", exclude={"versions", "version"}),
            "variant": variant.model_dump(mode="json") if variant else None,
        }
    files: dict[str, str] = {}
    root = matrix.templates_dir
    if root.is_dir():
        for folder in sorted(p for p in (root / "environments").glob("*") if p.is_dir()):
            for path in template_files(root, folder.name):
                rel = str(path.relative_to(root))
                files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashlib.sha256(
        canonical_json({"services": body, "templates": files}).encode()
    ).hexdigest()


def create_release(
    ws: Workspace,
    pins: Mapping[str, str],
    *,
    from_env: str | None = None,
    note: str | None = None,
) -> ReleaseRecord:
    """Record a release: every service's version, pinned by `pins`, else what `from_env`
    runs, else the matrix's initial version."""
    matrix = ws.matrix
    services = all_services(matrix)
    for name in pins:
        if name not in services:
            raise BadInput(
                f"--service {name}: the matrix has no service {name!r}{suggest(name, services)}",
                hint=f"services: {', '.join(services)}",
            )
    if note is not None and len(note) > 2000:
        raise BadInput("a release note is at most 2000 characters")
    base: dict[str, str] = {name: s.initial_version() for name, s in services.items()}
    if from_env is not None:
        record = ws.store.get_environment(from_env)
        if record is None or record.status == "destroyed":
            raise BadInput(f"--from-env: environment {from_env!r} does not exist")
        base.update({name: run.version for name, run in running_services(ws, from_env).items()})
    versions = {**base, **pins}
    for name, version in versions.items():
        check_version(name, services[name], version)
    release = ws.store.create_release(
        versions, config_digest=config_digest(matrix, versions), note=note, source_env=from_env
    )
    ws.store.audit(
        None,
        "release",
        f"{release.id}: " + ", ".join(f"{k}={v}" for k, v in sorted(versions.items())),
    )
    return release


def get_release(ws: Workspace, release_id: str) -> ReleaseRecord:
    found = ws.store.get_release(release_id)
    if found is None:
        raise BadInput(
            f"no release {release_id!r}", hint="`envplane releases` lists the recorded releases"
        )
    return found
