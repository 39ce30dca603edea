"""The environment matrix: one YAML file, checked and resolved into pydantic models.

    matrix = load_matrix(Path("config/environment-matrix.yaml"))
    matrix.environment("staging").databases.primary.version

Every problem with the file is a MatrixError naming file, line and key path.
"""

from envplane.matrix.loader import DEFAULT_STRATEGY, Matrix, load_matrix, load_matrix_text
from envplane.matrix.models import (
    CacheCluster,
    Cluster,
    Databases,
    DeploymentStrategy,
    Environment,
    Monitoring,
    Networking,
    NodeGroup,
    PrimaryDatabase,
    Regions,
    Security,
    Service,
    Storage,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "CacheCluster",
    "Cluster",
    "Databases",
    "DeploymentStrategy",
    "Environment",
    "Matrix",
    "Monitoring",
    "Networking",
    "NodeGroup",
    "PrimaryDatabase",
    "Regions",
    "Security",
    "Service",
    "Storage",
    "load_matrix",
    "load_matrix_text",
]
