"""Names and settings of the cloud rendering: AWS and Kubernetes names, labels, the backend.

Every name is derived from already-checked names (project, environment, service), so the
functions here only adapt them to each system's rules."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from envplane.errors import BadInput

KUBERNETES_VERSION = "1.31"  # EKS control plane; manifests are validated against this version
REDIS_VERSION = "7.1"
DB_STORAGE_GB = 20  # RDS starts here and grows by storage autoscaling up to DB_MAX_STORAGE_GB
DB_MAX_STORAGE_GB = 100
DB_USER = "app"
DEFAULT_FRONTEND_IMAGE = "nginx:1.27-alpine"
CHART = "prometheus-community/kube-prometheus-stack"
CHART_REPO = ("prometheus-community", "https://prometheus-community.github.io/helm-charts")
CHART_VERSION = "69.4.1"
MONITORING_NAMESPACE = "monitoring"
RELEASE = "prometheus"

STATE_BUCKET_ENV = "ENVPLANE_TF_STATE_BUCKET"
LOCK_TABLE_ENV = "ENVPLANE_TF_LOCK_TABLE"
STATE_REGION_ENV = "ENVPLANE_TF_STATE_REGION"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")

PLACEHOLDER = "${tf:%s}"  # replaced by the driver with `terraform output` values at apply time
PLACEHOLDER_RE = re.compile(r"\$\{tf:([a-z_][a-z0-9_]*)\}")


def placeholder(output: str) -> str:
    return PLACEHOLDER % output


def stack_name(project: str, env: str) -> str:
    """`sunday-production`: the prefix of every AWS name, as in the seed."""
    return f"{project}-{env}"


def aws_name(base: str, limit: int) -> str:
    """`base` if it fits AWS's length limit, else a cut with a stable hash (still unique)."""
    if len(base) <= limit:
        return base
    tag = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: limit - 9].rstrip('-')}-{tag}"


def tf_name(name: str) -> str:
    """A Terraform block label: letters, digits, '_' and '-', not starting with a digit."""
    label = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return label if re.match(r"[A-Za-z_]", label) else f"_{label}"


def k8s_name(name: str) -> str:
    """A DNS-1123 label from a checked service name (which may hold '_' or end in '-')."""
    return name.replace("_", "-").strip("-")


def labels(project: str, env: str, component: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/part-of": project,
        "app.kubernetes.io/managed-by": "envplane",
        "envplane.io/environment": env,
    }
    if component:
        out["app.kubernetes.io/name"] = component
    return out


def tags(project: str, env: str) -> dict[str, str]:
    return {"Project": project, "Environment": env, "ManagedBy": "envplane"}


def backend_config(
    project: str, env: str, region: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The S3 backend of one environment: the seed's state key, bucket and lock table from
    settings (ENVPLANE_TF_STATE_BUCKET, ENVPLANE_TF_LOCK_TABLE, ENVPLANE_TF_STATE_REGION)."""
    source = os.environ if environ is None else environ
    bucket = source.get(STATE_BUCKET_ENV) or f"{project}-terraform-state"
    table = source.get(LOCK_TABLE_ENV) or f"{project}-terraform-locks"
    state_region = source.get(STATE_REGION_ENV) or region
    if not _BUCKET_RE.fullmatch(bucket):
        raise BadInput(
            f"{STATE_BUCKET_ENV}={bucket!r} is not an S3 bucket name",
            hint="use 3-63 characters from a-z, 0-9, '.' and '-'",
        )
    if not _TABLE_RE.fullmatch(table):
        raise BadInput(
            f"{LOCK_TABLE_ENV}={table!r} is not a DynamoDB table name",
            hint="use 3-255 characters from A-Z, a-z, 0-9, '_', '.' and '-'",
        )
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", state_region):
        raise BadInput(f"{STATE_REGION_ENV}={state_region!r} is not an AWS region name")
    return {
        "bucket": bucket,
        "key": f"environments/{env}/terraform.tfstate",
        "region": state_region,
        "dynamodb_table": table,
        "encrypt": True,
    }
