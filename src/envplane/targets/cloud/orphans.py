"""Orphans on the cloud: what the cloud target made, labelled as envplane's, that no recorded
environment owns.

- a namespace labelled `app.kubernetes.io/managed-by=envplane` whose `envplane.io/environment`
  is no live environment (render/cloud/names.labels), on each cluster the matrix names (or the
  one ENVPLANE_KUBECONFIG names), with the Helm releases installed in it;
- a Terraform working directory (`ENVPLANE_HOME/environments/NAME/terraform`, initialised or
  holding a local state) of no live environment, with what its state still manages.

Removal: each Helm release uninstalled, then the namespace deleted (awaited); `terraform
destroy` in the working directory, which stays while its state still lists something (the
directory is the only handle on those cloud resources: it is never just deleted).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from envplane.errors import EnvplaneError
from envplane.render.cloud.names import labels
from envplane.targets.base import Orphaned
from envplane.targets.cloud.helm import Helm
from envplane.targets.cloud.kube import KubeClient
from envplane.targets.cloud.kubeconn import Connection, connect, user_kubeconfig
from envplane.targets.cloud.terraform import Terraform
from envplane.targets.cloud.tools import find_helm, run

ENV_LABEL = "envplane.io/environment"
MANAGED = "app.kubernetes.io/managed-by=" + labels("", "")["app.kubernetes.io/managed-by"]
NAMESPACE_TIMEOUT = 120.0


def _quiet(_msg: str) -> None:
    return None


def _connections(clusters: Iterable[tuple[str, str]], work: Path) -> list[Connection]:
    """One connection per API server: the user's kubeconfig stands for every cluster."""
    if user_kubeconfig() is not None:
        return [connect("", "", work)]
    out: dict[str, Connection] = {}
    for name, region in sorted(set(clusters)):
        try:
            conn = connect(name, region, work / name)
        except EnvplaneError:
            continue  # a cluster not made (yet, or any more) holds no namespace
        out.setdefault(conn.host, conn)
    return list(out.values())


def _releases(conn: Connection, namespace: str) -> list[str]:
    argv = [find_helm(), "list", "--namespace", namespace, "--all", "--output", "json"]
    result = run(argv, cwd=None, env={**os.environ, **conn.helm_env()}, timeout=120)
    if result.returncode != 0:
        return []
    try:
        return sorted(str(r["name"]) for r in json.loads(result.stdout or "[]"))
    except (ValueError, KeyError, TypeError):
        return []


def _namespaces(conn: Connection, live: set[str]) -> list[Orphaned]:
    from kubernetes import client

    core: Any = client.CoreV1Api(conn.api)
    found: list[Orphaned] = []
    for ns in core.list_namespace(label_selector=MANAGED).items:
        env = (ns.metadata.labels or {}).get(ENV_LABEL)
        name = str(ns.metadata.name)
        if not env or env in live or ns.status.phase == "Terminating":
            continue
        for release in _releases(conn, name):
            found.append(
                Orphaned(str(env), "helm-release", f"{name}/{release}", conn.host,
                         f"Helm release {release} in namespace {name} on {conn.host}")
            )  # fmt: skip
        found.append(
            Orphaned(str(env), "namespace", name, conn.host, f"namespace {name} on {conn.host}")
        )
    return found


def _states(home: Path, live: set[str]) -> list[Orphaned]:
    root = home / "environments"
    found: list[Orphaned] = []
    if not root.is_dir():
        return found
    for workdir in sorted(root.glob("*/terraform")):
        env = workdir.parent.name
        if env.startswith(".") or env in live or not workdir.is_dir():
            continue
        if not ((workdir / ".terraform").is_dir() or (workdir / "terraform.tfstate").is_file()):
            continue
        what = f"Terraform working directory {workdir}"
        try:
            managed = Terraform(workdir, _quiet).state_list()
            what += f" (its state manages {len(managed)} resource(s))" if managed else ""
        except EnvplaneError as exc:
            what += f" (its state could not be read: {exc.message})"
        found.append(Orphaned(env, "terraform-state", str(workdir), str(workdir), what))
    return found


def find(home: Path, live: set[str], clusters: Iterable[tuple[str, str]]) -> list[Orphaned]:
    out = _states(home, live)
    for conn in _connections(clusters, home / "kube"):
        out += _namespaces(conn, live)
    return out


def remove(orphan: Orphaned, home: Path, clusters: Iterable[tuple[str, str]]) -> list[str]:
    """What could not be removed ([] when all of it went)."""
    try:
        if orphan.kind == "terraform-state":
            return _destroy_state(Path(orphan.name))
        for conn in _connections(clusters, home / "kube"):
            if conn.host != orphan.where:
                continue
            if orphan.kind == "helm-release":
                namespace, _, release = orphan.name.partition("/")
                Helm(_quiet, conn.helm_env()).uninstall(release, namespace)
            elif orphan.kind == "namespace":
                KubeClient(conn.api).delete_namespace(orphan.name, NAMESPACE_TIMEOUT)
            return []
        return [f"{orphan.description}: its API server is not reachable any more"]
    except EnvplaneError as exc:
        return [f"{orphan.description}: {exc.message}"]


def _destroy_state(workdir: Path) -> list[str]:
    tf = Terraform(workdir, _quiet)
    if tf.initialised and tf.state_list():
        tf.destroy()
        left = tf.state_list()
        if left:
            return [f"terraform destroy in {workdir} left {len(left)}: {', '.join(left[:5])}"]
    shutil.rmtree(workdir, ignore_errors=True)
    return [f"could not remove {workdir}"] if workdir.exists() else []
