"""What the cloud target does differently from what the matrix says: said once, never dropped."""

from __future__ import annotations

from envplane.matrix import Matrix
from envplane.render.cloud.tf_network import layout
from envplane.render.cloud.tracks import INGRESS_CLASS_VARIABLE
from envplane.render.variables import is_on


def cloud_notes(matrix: Matrix, env: str, *, replicated_storage: bool) -> list[str]:
    e = matrix.environment(env)
    notes: list[str] = []
    net = e.networking
    if net is not None:
        lay = layout(net, e)
        if lay.private > net.private_subnets or lay.private_zones > net.availability_zones:
            notes.append(
                f"networking: EKS and RDS need subnets in two availability zones; {lay.private} "
                f"private subnets over {lay.private_zones} zones are created (matrix: "
                f"{net.private_subnets} over {net.availability_zones})"
            )
        if lay.private and not net.nat_gateways:
            notes.append(
                "networking: no NAT gateway; private subnets cannot reach the internet "
                "(nodes cannot pull public images)"
            )
    if len(e.clusters) > 1:
        notes.append(
            f"clusters: workloads run on {e.clusters[0].name}; the other clusters get none"
        )
    strategy = matrix.strategy_for(env).primary
    ingress = bool(matrix.variables_for(env).get(INGRESS_CLASS_VARIABLE))
    if strategy == "canary" and not ingress:
        notes.append(
            "strategy canary: no Ingress (variable INGRESS_CLASS), so a canary's weight is its "
            "share of the service's replicas, not an exact share of the requests"
        )
    if strategy in ("blue_green", "canary") and not ingress:
        notes.append(
            f"strategy {strategy}: the traffic analysis reads ingress-nginx's metrics in "
            "Prometheus; without an Ingress of envplane's it finds only what other Ingresses "
            "send to the active Service"
        )
    if e.regions.secondary:
        what = ["RDS automated backups"] if e.databases and e.databases.primary else []
        if replicated_storage:
            what.append("S3 objects")
        copied = " and ".join(what) or "nothing"
        notes.append(
            f"region {e.regions.secondary} (secondary): {copied} replicated there; "
            "no standby cluster runs"
        )
        if e.storage is not None and not replicated_storage:
            notes.append(
                "storage: not replicated to the secondary region (needs versioning and AES256)"
            )
    if e.monitoring is not None:
        for tool in ("jaeger", "elk_stack"):
            if is_on(getattr(e.monitoring, tool)):
                notes.append(
                    f"monitoring: {tool} is not deployed (kube-prometheus-stack covers "
                    "Prometheus and Grafana)"
                )
    if e.security is not None:
        sec = e.security
        notes.append(
            f"security: iam_roles {sec.iam_roles} sets EKS control-plane logging "
            "(strict: api, audit, authenticator; otherwise audit); IAM roles are the same "
            "least-privilege AWS-managed policies at every level"
        )
        if not is_on(sec.secrets_manager):
            notes.append(
                "security: database and Redis passwords live in Secrets Manager even though "
                "secrets_manager is disabled (nothing else keeps them out of the files)"
            )
    return notes
