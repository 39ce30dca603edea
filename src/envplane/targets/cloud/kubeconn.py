"""How the cloud target reaches a Kubernetes API: the environment's EKS cluster (endpoint and CA
from describe_cluster, a token signed with the caller's AWS identity), or a kubeconfig the user
names with ENVPLANE_KUBECONFIG and/or ENVPLANE_KUBE_CONTEXT (KUBECONFIG is honoured as the file
when only the context is given). A plain KUBECONFIG alone never redirects an environment's
workloads to another cluster."""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, OperationFailed
from envplane.render.cloud.write import write_text
from envplane.targets.cloud import aws

KUBECONFIG_ENV = "ENVPLANE_KUBECONFIG"
CONTEXT_ENV = "ENVPLANE_KUBE_CONTEXT"
TOKEN_LIFETIME = 600.0  # EKS tokens are good for 15 minutes; renew well before


@dataclass
class Connection:
    """An ApiClient for the official client, and the environment Helm needs for the same API."""

    api: Any  # kubernetes.client.ApiClient
    host: str
    helm: dict[str, str] = field(default_factory=dict)

    def helm_env(self) -> dict[str, str]:
        env = dict(self.helm)
        if "HELM_KUBEAPISERVER" in env:
            # A fresh token each time, passed through the environment, never argv.
            env["HELM_KUBETOKEN"] = _bearer(self.api)
        return env


def _bearer(api: Any) -> str:
    cfg = api.configuration
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    return str(cfg.api_key.get("authorization", ""))


def user_kubeconfig() -> tuple[str | None, str | None] | None:
    """(file, context) when the user chose a kubeconfig for envplane, else None."""
    path = os.environ.get(KUBECONFIG_ENV)
    context = os.environ.get(CONTEXT_ENV)
    if not path and not context:
        return None
    if not path:
        first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        path = first or None
    return path, context or None


def from_kubeconfig(path: str | None, context: str | None) -> Connection:
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        load: Any = config.new_client_from_config  # untyped in the client
        api = load(config_file=path, context=context, persist_config=False)
    except (ConfigException, OSError) as exc:
        where = path or "~/.kube/config"
        raise BadInput(
            f"cannot use kubeconfig {where}"
            + (f" context {context!r}" if context else "")
            + f": {exc}",
            hint=f"check {KUBECONFIG_ENV} / {CONTEXT_ENV}, or unset both to use the EKS cluster",
        ) from None
    helm: dict[str, str] = {}
    if path:
        helm["KUBECONFIG"] = path
    if context:
        helm["HELM_KUBECONTEXT"] = context
    return Connection(api=api, host=str(api.configuration.host), helm=helm)


def from_eks(cluster: aws.EksCluster, region: str, work: Path) -> Connection:
    from kubernetes import client

    if cluster.status != "ACTIVE":
        raise OperationFailed(
            f"EKS cluster {cluster.name} is {cluster.status}, not ACTIVE",
            hint="wait for it, or look at it in the AWS console",
        )
    try:
        ca = base64.b64decode(cluster.ca_data, validate=True)
    except (binascii.Error, ValueError):
        raise OperationFailed(f"EKS cluster {cluster.name}: its CA data is not base64") from None
    ca_file = work / f"{cluster.name}-ca.crt"
    write_text(ca_file, ca.decode("ascii", errors="replace"), mode=0o600)
    cfg: Any = client.Configuration()
    cfg.host = cluster.endpoint
    cfg.ssl_ca_cert = str(ca_file)
    cfg.verify_ssl = True
    cfg.api_key_prefix = {"authorization": "Bearer"}
    # When the token in cfg is due for renewal; None until the first is minted. (Not a "minted
    # at 0.0" sentinel: time.monotonic() counts from boot, so on a host up for less than
    # TOKEN_LIFETIME that would look like a fresh token and every request went unauthenticated.)
    renew_at: list[float | None] = [None]

    def refresh(c: Any) -> None:
        now = time.monotonic()
        due = renew_at[0]
        if due is None or now >= due:
            c.api_key["authorization"] = aws.eks_token(region, cluster.name)
            renew_at[0] = now + TOKEN_LIFETIME

    cfg.refresh_api_key_hook = refresh
    refresh(cfg)
    helm = {"HELM_KUBEAPISERVER": cluster.endpoint, "HELM_KUBECAFILE": str(ca_file)}
    return Connection(api=client.ApiClient(cfg), host=cluster.endpoint, helm=helm)


def connect(cluster: str, region: str, work: Path) -> Connection:
    """The user's kubeconfig if they chose one, else the environment's EKS cluster."""
    chosen = user_kubeconfig()
    if chosen is not None:
        return from_kubeconfig(*chosen)
    found = aws.eks_cluster(region, cluster)
    if found is None:
        raise OperationFailed(
            f"EKS cluster {cluster} not found in {region}",
            hint="its Terraform step creates it: `envplane resume` or `envplane update`",
        )
    return from_eks(found, region, work)
