"""EKS: one cluster per matrix cluster (in the primary region's VPC), one managed node group per
`node_groups` entry, with the least-privilege roles AWS documents for each."""

from __future__ import annotations

from envplane.matrix import Cluster
from envplane.render.cloud.names import KUBERNETES_VERSION, aws_name, tf_name
from envplane.render.cloud.tf import TfFile, assume_role, managed_policy, policy, ref

NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "cni": "AmazonEKS_CNI_Policy",
    "ecr": "AmazonEC2ContainerRegistryReadOnly",
}
STRICT_LOGS = ["api", "audit", "authenticator"]


def cluster(
    f: TfFile, spec: Cluster, *, subnets: str, kms: str | None, strict_logging: bool
) -> str:
    """Adds the cluster, its roles and node groups; returns the cluster's Terraform label."""
    c = tf_name(spec.name)
    f.data("aws_partition", "current", {})
    role = f.resource(
        "aws_iam_role",
        f"{c}_cluster",
        {
            "name_prefix": f"{aws_name(spec.name, 28)}-cluster-",
            "assume_role_policy": assume_role("eks.amazonaws.com"),
        },
    )
    attach = f.resource(
        "aws_iam_role_policy_attachment",
        f"{c}_cluster",
        {"role": ref(f"{role}.name"), "policy_arn": managed_policy("AmazonEKSClusterPolicy")},
    )
    body: dict[str, object] = {
        "name": spec.name,
        "version": KUBERNETES_VERSION,
        "role_arn": ref(f"{role}.arn"),
        "vpc_config": {
            "subnet_ids": subnets,
            "endpoint_private_access": True,
            "endpoint_public_access": True,
        },
        # The identity that runs Terraform administers the cluster; envplane uses the same one.
        "access_config": {
            "authentication_mode": "API_AND_CONFIG_MAP",
            "bootstrap_cluster_creator_admin_permissions": True,
        },
        "enabled_cluster_log_types": STRICT_LOGS if strict_logging else ["audit"],
        "depends_on": [attach],
    }
    if kms is not None:
        body["encryption_config"] = {"provider": {"key_arn": kms}, "resources": ["secrets"]}
        # The default key policy leaves key use to IAM: the cluster role needs these actions.
        encrypt = f.resource(
            "aws_iam_role_policy",
            f"{c}_encryption",
            {
                "name": "secrets-encryption",
                "role": ref(f"{role}.id"),
                "policy": policy(
                    [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "kms:Decrypt",
                                "kms:DescribeKey",
                                "kms:Encrypt",
                                "kms:ListGrants",
                            ],
                            "Resource": kms,
                        }
                    ]
                ),
            },
        )
        body["depends_on"] = [attach, encrypt]
    eks = f.resource("aws_eks_cluster", c, body)
    _node_groups(f, spec, c, eks, subnets)
    return c


def _node_groups(f: TfFile, spec: Cluster, c: str, eks: str, subnets: str) -> None:
    role = f.resource(
        "aws_iam_role",
        f"{c}_nodes",
        {
            "name_prefix": f"{aws_name(spec.name, 30)}-nodes-",
            "assume_role_policy": assume_role("ec2.amazonaws.com"),
        },
    )
    attachments = [
        f.resource(
            "aws_iam_role_policy_attachment",
            f"{c}_nodes_{short}",
            {"role": ref(f"{role}.name"), "policy_arn": managed_policy(name)},
        )
        for short, name in NODE_POLICIES.items()
    ]
    for group in spec.node_groups:
        f.resource(
            "aws_eks_node_group",
            f"{c}_{tf_name(group.name)}",
            {
                "cluster_name": ref(f"{eks}.name"),
                "node_group_name": group.name,
                "node_role_arn": ref(f"{role}.arn"),
                "subnet_ids": subnets,
                "instance_types": [group.instance_type],
                "scaling_config": {
                    "min_size": group.min_size,
                    "max_size": group.max_size,
                    "desired_size": group.desired_size,
                },
                "update_config": {"max_unavailable": 1},
                "labels": {"envplane.io/node-group": group.name},
                "depends_on": attachments,
            },
        )
