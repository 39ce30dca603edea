"""envplane's default policies: what a production-like environment (`approval_required: true`
in its `deployment_strategies` entry) must keep. A matrix switches one off only with a reason
(`policies: {disable: {"<id>": "<reason>"}}`) and adds its own under `policies: {rules: [...]}`.

A Python table rather than a YAML file beside the code: it needs no package data kept in step
with pyproject.toml and no file read on every `load_matrix` (which large matrices are
benchmarked on), and it is checked by the same model and key-path checks as a matrix's rules
(`matrix.policies.DEFAULT_RULES`), so a mistake here fails every test that loads a matrix.
"""

from __future__ import annotations

from typing import Any

_PRODUCTION = {"approval_required": True}

DEFAULTS: tuple[dict[str, Any], ...] = (
    {
        "id": "multi-az",
        "key": "databases.primary.multi_az",
        "op": "eq",
        "value": True,
        "applies_to": _PRODUCTION,
        "description": "the database survives the loss of one availability zone",
    },
    {
        "id": "backup-retention",
        "key": "databases.primary.backup_retention",
        "op": "ge",
        "value": 7,
        "applies_to": _PRODUCTION,
        "description": "a week of backups to restore from",
    },
    {
        "id": "kms-encryption",
        "key": "security.kms_encryption",
        "op": "eq",
        "value": "enabled",
        "applies_to": _PRODUCTION,
        "description": "data at rest is encrypted with managed keys",
    },
    {
        "id": "secrets-manager",
        "key": "security.secrets_manager",
        "op": "eq",
        "value": "enabled",
        "applies_to": _PRODUCTION,
        "description": "secrets come from a secrets manager, not from files",
    },
    {
        "id": "network-policies",
        "key": "security.network_policies",
        "op": "eq",
        "value": "enabled",
        "applies_to": _PRODUCTION,
        "description": "workloads reach only what they are allowed to",
    },
    {
        "id": "iam-roles-strict",
        "key": "security.iam_roles",
        "op": "eq",
        "value": "strict",
        "applies_to": _PRODUCTION,
        "description": "least-privilege IAM roles",
    },
    {
        "id": "prometheus",
        "key": "monitoring.prometheus",
        "op": "eq",
        "value": "enabled",
        "applies_to": _PRODUCTION,
        "description": "metrics are collected: a rollout's analysis and alerts need them",
    },
    {
        "id": "availability-zones",
        "key": "networking.availability_zones",
        "op": "ge",
        "value": 2,
        "applies_to": _PRODUCTION,
        "description": "the network spans at least two availability zones",
    },
    {
        "id": "secondary-region",
        "key": "regions.secondary",
        "op": "present",
        "applies_to": _PRODUCTION,
        "description": "a second region to recover into",
    },
)
