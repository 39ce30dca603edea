"""NetworkPolicies: deny by default, then open exactly what the services need.

`network_policies: basic` locks down ingress; `enabled` locks down egress as well and then
allows DNS, traffic inside the namespace, PostgreSQL/Redis inside the VPC, and HTTPS out when
the environment has S3 storage (AWS APIs)."""

from __future__ import annotations

from typing import Any

from envplane.render.cloud.names import MONITORING_NAMESPACE, labels
from envplane.render.cloud.tracks import INGRESS_NAMESPACE
from envplane.render.cloud.workloads import Workload, selector


def _policy(ns: str, name: str, spec: dict[str, Any], project: str, env: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": labels(project, env)},
        "spec": spec,
    }


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(*ports: int | str) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def network_policies(
    ns: str,
    workloads: list[Workload],
    *,
    project: str,
    env: str,
    egress: bool,
    scraped: bool,
    vpc_cidr: str | None,
    data_ports: list[int],
    https_out: bool,
    from_ingress: bool = False,
) -> list[dict[str, Any]]:
    types = ["Ingress", "Egress"] if egress else ["Ingress"]
    out = [_policy(ns, "default-deny", {"podSelector": {}, "policyTypes": types}, project, env)]
    for w in workloads:
        rule: dict[str, Any] = {"ports": _tcp(w.port)}
        if not w.public:  # a LoadBalancer's traffic comes from anywhere; the rest from inside
            sources: list[dict[str, Any]] = [{"podSelector": {}}]
            if from_ingress and w.version is not None:  # its Ingress: ingress-nginx's pods
                sources.append(_namespace(INGRESS_NAMESPACE))
            if scraped and w.metrics_path:
                sources.append(_namespace(MONITORING_NAMESPACE))
            rule["from"] = sources
        spec = {
            "podSelector": {"matchLabels": selector(ns, w.name)},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        }
        out.append(_policy(ns, f"allow-{w.name}-ingress", spec, project, env))
    if not egress:
        return out
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    rules: list[dict[str, Any]] = [dns, {"to": [{"podSelector": {}}]}]
    if vpc_cidr and data_ports:
        rules.append({"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": _tcp(*data_ports)})
    if https_out:
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443)})
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules}
    out.append(_policy(ns, "allow-egress", spec, project, env))
    return out
