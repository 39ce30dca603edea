"""The cloud target's rendering: Terraform JSON, Kubernetes manifests, Helm values (docs/cloud.md).

desired = desired_cloud(matrix, "staging")
write_rendered(desired, Path("out"))   # out/terraform, out/kubernetes, out/helm
"""

from envplane.render.cloud.desired import desired_cloud
from envplane.render.cloud.names import KUBERNETES_VERSION
from envplane.render.cloud.write import dump_yaml, rendered_files, write_rendered

__all__ = ["KUBERNETES_VERSION", "desired_cloud", "dump_yaml", "rendered_files", "write_rendered"]
