"""The cloud target: Terraform/OpenTofu, the Kubernetes API (official client), Helm and boto3.

Importing this package is cheap: boto3 and kubernetes load only when a driver function runs."""

from envplane.targets.cloud.data import CloudData
from envplane.targets.cloud.driver import CloudTarget
from envplane.targets.cloud.validation import CloudValidator

__all__ = ["CloudData", "CloudTarget", "CloudValidator"]
