"""The Helm CLI, as the seed runs it for kube-prometheus-stack:

    helm repo add prometheus-community https://prometheus-community.github.io/helm-charts
    helm upgrade --install prometheus prometheus-community/kube-prometheus-stack
         --namespace monitoring --create-namespace --values <file> --wait

The cluster is named through the environment (KUBECONFIG/HELM_KUBECONTEXT, or
HELM_KUBEAPISERVER/HELM_KUBECAFILE/HELM_KUBETOKEN for EKS): a token never sits in argv."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.cloud.tools import Result, find_helm, run

TIMEOUT = "10m"  # helm's own --wait limit


def _not_found(result: Result) -> bool:
    text = (result.stderr + result.stdout).lower()
    return "not found" in text


class Helm:
    def __init__(self, progress: Callable[[str], None], kube_env: Mapping[str, str]) -> None:
        self.binary = find_helm()
        self.progress = progress
        self.env = {**os.environ, **kube_env}

    def _run(self, *args: str, timeout: float = 900) -> Result:
        return run([self.binary, *args], cwd=None, env=self.env, timeout=timeout)

    def _check(self, result: Result, doing: str) -> Result:
        if result.returncode != 0:
            raise OperationFailed(f"helm {doing} failed: {result.tail()}")
        return result

    def repo_add(self, name: str, url: str) -> None:
        self.progress(f"helm repo add {name}")
        self._check(self._run("repo", "add", name, url, "--force-update"), f"repo add {name}")
        self._check(self._run("repo", "update", name), f"repo update {name}")

    def upgrade_install(
        self, release: str, chart: str, *, version: str, namespace: str, values: Path
    ) -> None:
        self.progress(f"helm upgrade --install {release} {chart} {version} (waiting)")
        result = self._run(
            "upgrade",
            "--install",
            release,
            chart,
            "--version",
            version,
            "--namespace",
            namespace,
            "--create-namespace",
            "--values",
            str(values),
            "--wait",
            "--timeout",
            TIMEOUT,
            timeout=1200,
        )
        self._check(result, f"upgrade --install {release}")

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """The release as `helm status -o json` describes it, or None if not installed."""
        result = self._run("status", release, "--namespace", namespace, "--output", "json")
        if result.returncode != 0:
            if _not_found(result):
                return None
            raise OperationFailed(f"helm status {release} failed: {result.tail()}")
        try:
            return dict(json.loads(result.stdout))
        except ValueError:
            raise OperationFailed(f"helm status {release} printed no JSON") from None

    def uninstall(self, release: str, namespace: str) -> bool:
        """True if it was installed; a release already gone is fine."""
        self.progress(f"helm uninstall {release}")
        result = self._run("uninstall", release, "--namespace", namespace, "--wait")
        if result.returncode != 0:
            if _not_found(result):
                return False
            raise OperationFailed(f"helm uninstall {release} failed: {result.tail()}")
        return True
