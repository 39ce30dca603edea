"""What one machine cannot honour of the matrix: said once, in plan and info, never dropped."""

from __future__ import annotations

from envplane.matrix import Matrix
from envplane.render.variables import is_on


def local_notes(matrix: Matrix, env: str) -> list[str]:
    e = matrix.environment(env)
    notes: list[str] = []
    for cluster in e.clusters or []:
        for group in cluster.node_groups:
            notes.append(
                f"cluster {cluster.name}: node group {group.name} ({group.desired_size} x "
                f"{group.instance_type}) runs as processes on this machine"
            )
    primary = e.databases.primary if e.databases else None
    if primary is not None:
        notes.append(
            f"postgres: instance class {primary.instance_class} is not applied; the installed "
            f"PostgreSQL server runs (matrix asks for {primary.version})"
        )
        if primary.multi_az:
            notes.append("postgres: multi_az cannot be honoured on one machine")
    cache = e.databases.cache if e.databases else None
    if cache is not None and cache.num_cache_nodes > 1:
        notes.append(
            f"redis: {cache.num_cache_nodes} cache nodes requested; one server runs locally"
        )
    if e.regions.secondary:
        notes.append(f"region {e.regions.secondary} (secondary) has no local counterpart")
    if e.networking is not None:
        notes.append(
            "networking: VPC, subnets and NAT gateways are cloud-only; services bind 127.0.0.1"
        )
    if e.monitoring is not None:
        for tool in ("grafana", "jaeger", "elk_stack"):
            if is_on(getattr(e.monitoring, tool, None)):
                notes.append(f"monitoring: {tool} is cloud-only; not started locally")
    if e.security is not None and is_on(e.security.kms_encryption):
        notes.append("security: KMS is replaced locally by envplane's own encryption key")
    return notes
