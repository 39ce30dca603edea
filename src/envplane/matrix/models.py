"""The matrix as pydantic models: the seed's keys, then envplane's additions.

Fields present in every environment of the seed are required; the others have defaults.
Models are strict (YAML already typed the values: "3" is not a count) and frozen.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from envplane.errors import InvalidName
from envplane.matrix.modelbase import Duration, LabelKey, LabelValue
from envplane.matrix.modelbase import StrictModel as _Model
from envplane.matrix.models_parity import EnvParity, ParitySpec
from envplane.matrix.models_policy import PolicySpec
from envplane.matrix.models_previews import PreviewsSpec
from envplane.matrix.vocab import (
    CacheNodeType,
    Cidr,
    ClusterName,
    Command,
    Cpu,
    DbClass,
    EngineVersion,
    EnvName,
    GroupName,
    InstanceType,
    Level,
    Memory,
    ProjectName,
    Region,
    ServiceName,
    StrategyName,
    Strictness,
    Switch,
    TemplateKey,
    TemplateName,
    UrlPath,
    ValidationLevel,
    VarName,
)
from envplane.names import check_ident

Size = Annotated[int, Field(ge=0, le=1000)]
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def _version(value: str) -> str:
    if not VERSION_RE.fullmatch(value):
        raise ValueError(
            f"invalid version {value!r}: up to 64 characters from letters, digits and "
            "'.', '_', '+', '-', like '1.2.0' or '2026.12.01-rc1'"
        )
    return value


Version = Annotated[str, AfterValidator(_version)]
Subnets = Annotated[int, Field(ge=0, le=32)]


def cross_field(message: str, key: str | None = None) -> PydanticCustomError:
    """An error about how two fields relate (partial templates skip these); `key` names the
    field of the model it is reported at, when a model-level rule is about one of them."""
    return PydanticCustomError("cross_field", message, {"key": key} if key else None)


# --- the seed's environment -------------------------------------------------------------


class Regions(_Model):
    primary: Region
    secondary: Region | None = None

    @field_validator("secondary")
    @classmethod
    def _differs(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("primary"):
            raise cross_field("the secondary region must differ from the primary region")
        return value


class NodeGroup(_Model):
    name: GroupName
    instance_type: InstanceType
    min_size: Size
    max_size: Size
    desired_size: Size

    @field_validator("max_size")
    @classmethod
    def _max(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and value < low:
            raise cross_field(f"max_size {value} is below min_size {low}")
        return value

    @field_validator("desired_size")
    @classmethod
    def _desired(cls, value: int, info: ValidationInfo) -> int:
        low, high = info.data.get("min_size"), info.data.get("max_size")
        if low is not None and value < low:
            raise cross_field(f"desired_size {value} is below min_size {low}")
        if high is not None and value > high:
            raise cross_field(f"desired_size {value} is above max_size {high}")
        return value


class Cluster(_Model):
    name: ClusterName  # default "<project>-<environment>", filled in by inherit.py
    region: Region  # default: the environment's primary region
    node_groups: list[NodeGroup]

    @field_validator("node_groups")
    @classmethod
    def _unique(cls, groups: list[NodeGroup]) -> list[NodeGroup]:
        names = [g.name for g in groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise cross_field(f"node group names must be unique; repeated: {', '.join(dupes)}")
        return groups


class PrimaryDatabase(_Model):
    engine: Literal["postgresql"]
    version: EngineVersion
    instance_class: DbClass
    multi_az: bool
    backup_retention: Annotated[int, Field(ge=0, le=35)]  # days; RDS allows 0-35


class CacheCluster(_Model):
    engine: Literal["redis"]
    node_type: CacheNodeType
    num_cache_nodes: Annotated[int, Field(ge=1, le=40)]


class Databases(_Model):
    primary: PrimaryDatabase | None = None
    cache: CacheCluster | None = None


class Storage(_Model):
    type: Literal["s3"]
    versioning: Switch
    encryption: Literal["AES256", "aws:kms"]
    lifecycle_policies: Switch = "disabled"


class Networking(_Model):
    vpc_cidr: Cidr
    availability_zones: Annotated[int, Field(ge=1, le=6)]
    public_subnets: Subnets
    private_subnets: Subnets
    nat_gateways: Subnets

    @field_validator("nat_gateways")
    @classmethod
    def _nat_needs_public(cls, value: int, info: ValidationInfo) -> int:
        if value > 0 and info.data.get("public_subnets") == 0:
            raise cross_field("NAT gateways live in public subnets; public_subnets is 0")
        return value


class Monitoring(_Model):
    prometheus: Level
    grafana: Level
    jaeger: Level
    elk_stack: Level


class Security(_Model):
    kms_encryption: Level
    secrets_manager: Switch
    iam_roles: Strictness
    network_policies: Level


class CanaryStep(_Model):
    """One step of a canary: `weight: 25` (per cent of the traffic to the new version), or
    `pause: 30s`, or `pause:` with no duration (held until `envplane promote --continue`)."""

    weight: Annotated[int, Field(ge=1, le=100)] | None = None
    pause: Duration | None = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        keys = self.model_fields_set & {"weight", "pause"}
        if len(keys) != 1:
            raise cross_field("a canary step is either `weight: N` or `pause: DURATION`")
        if keys == {"weight"} and self.weight is None:
            raise cross_field("a canary step's weight is a number from 1 to 100", "weight")
        return self

    @property
    def waits_for_continue(self) -> bool:
        return "pause" in self.model_fields_set and self.pause is None


DEFAULT_CANARY_STEPS = [CanaryStep(weight=w) for w in (10, 25, 50, 100)]


class Analysis(_Model):
    """How a new version is judged on its own real traffic (Flagger and Argo Rollouts alike):
    every `interval`, its success rate and p99 latency; `failure_limit` failed checks roll it
    back. Fewer than `min_requests` requests is inconclusive, never a pass."""

    source: Literal["access_log", "prometheus"] = "access_log"
    interval: Duration = 5.0
    success_rate: Annotated[float, Field(ge=0, le=100)] = 99.0  # per cent, at least
    p99_ms: Annotated[int, Field(ge=1, le=600_000)] = 500  # at most
    failure_limit: Annotated[int, Field(ge=1, le=100)] = 2
    min_requests: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    inconclusive: Literal["pause", "fail"] = "pause"
    window: Duration = 10.0  # blue-green's post-promotion analysis

    @field_validator("interval", "window")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not 0.5 <= value <= 3600:
            raise cross_field("an analysis interval is between 0.5s and 1h")
        return value


class DeploymentStrategy(_Model):
    primary: StrategyName
    alternatives: list[StrategyName] = []
    validation_required: ValidationLevel = "basic"
    approval_required: bool = False
    # envplane additions (docs/delivery.md)
    promote_from: EnvName | None = None  # default: the environment listed after this one
    approvals: Annotated[int, Field(ge=1, le=10)] = 1  # distinct approvers, none the requester
    soak: Duration | None = None  # how long a release runs upstream before it may come here
    scale_down_delay: Duration = 30.0  # blue-green keeps the old color this long
    steps: list[CanaryStep] = DEFAULT_CANARY_STEPS
    analysis: Analysis = Analysis()

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [s.weight for s in steps if s.weight is not None]
        if not weights:
            raise cross_field("canary steps need at least one `weight:`")
        for before, after in itertools.pairwise(weights):
            if after <= before:
                raise cross_field(f"canary weights must increase: {after} comes after {before}")
        return steps

    def strategies(self) -> list[str]:
        return [self.primary, *[a for a in self.alternatives if a != self.primary]]


# --- envplane's additions ---------------------------------------------------------------


def _secret_name(value: str) -> str:
    try:
        return check_ident(value, what="secret name")
    except InvalidName as exc:
        raise ValueError(exc.message) from None


SecretName = Annotated[str, AfterValidator(_secret_name)]


class SecretRef(_Model):
    """`{secret: NAME}` as a service's env value: the environment's secret NAME, generated once
    (random) unless set with `envplane secret set ENV NAME`, kept encrypted in the state store.
    Specs, plans and every output name it; only the program's 0600 launch spec holds its value."""

    secret: SecretName


def _env_value(value: object) -> object:
    # Text, or a mapping read as a SecretRef (its own errors located under it: `.secret`);
    # not a plain union, whose errors would name each alternative tried.
    if isinstance(value, str | SecretRef):
        return value
    if isinstance(value, dict):
        return SecretRef.model_validate(value)
    raise PydanticCustomError(
        "string_type", "Input should be text or {form}", {"form": "{secret: NAME}"}
    )


EnvValue = Annotated[str | SecretRef, BeforeValidator(_env_value)]

# Keys of env values that are secrets by their name: a plain value under one is refused by
# `envplane check` (it would be stored and shown in clear), and validation names it.
_SECRET_SUFFIXES = (
    "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATEKEY",
    "PRIVATE_KEY", "ACCESS_KEY", "AUTH_KEY", "SECRET_KEY",
)  # fmt: skip


def secret_looking(key: str) -> bool:
    """Whether an env key names a secret (case-insensitive): it ends with PASSWORD, SECRET,
    TOKEN, API_KEY, PRIVATE_KEY, ACCESS_KEY, ... (DATABASE_PASSWORD, JWT_SECRET, githubToken,
    STRIPE_API_KEY, AWS_SECRET_ACCESS_KEY), or holds SECRET_KEY_ (SECRET_KEY_BASE).
    TOKEN_TTL, PASSWORD_MIN_LENGTH, AWS_ACCESS_KEY_ID or SSH_PRIVATE_KEY_PATH do not."""
    upper = key.upper()
    return upper.endswith(_SECRET_SUFFIXES) or "SECRET_KEY_" in upper


class ServiceVersion(_Model):
    """What one version of a service runs, where it differs from the service: its artifact
    (`command`), environment and migration. `{version}` in each stands for the version's
    name."""

    command: Command | None = None
    env: dict[VarName, EnvValue] = {}
    migrate: Command | None = None  # this version's migration, instead of the service's


class Service(_Model):
    """An application process: a command locally, an image in the cloud."""

    command: Command = []  # "{python}" stands for the interpreter running envplane
    image: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    health_path: UrlPath = "/health"
    metrics_path: UrlPath = "/metrics"
    replicas: Annotated[int, Field(ge=1, le=100)] = 1
    env: dict[VarName, EnvValue] = {}  # text, or {secret: NAME} (SecretRef)
    cpu: Cpu | None = None
    memory: Memory | None = None
    # envplane additions for releases (docs/delivery.md)
    version: Version | None = None  # what an environment runs before its first release
    versions: dict[Version, ServiceVersion] = {}  # when given, the only versions releasable
    depends_on: list[ServiceName] = []  # rolled out after these, in one release
    migrate: Command = []  # run once before a new version takes traffic
    smoke_path: UrlPath | None = None  # checked on a new blue-green color before the switch

    @model_validator(mode="after")
    def _runnable(self) -> Service:
        if not self.command and not self.image:
            raise cross_field(
                "a service needs a `command` (local) or an `image` (cloud)", "command"
            )
        if self.versions and self.version is not None and self.version not in self.versions:
            raise cross_field(
                f"version {self.version!r} is not one of `versions:` ({', '.join(self.versions)})",
                "version",
            )
        return self

    def initial_version(self) -> str:
        """The version an environment runs before any release: `version`, else the image's
        tag, else the first of `versions`, else "unversioned"."""
        if self.version is not None:
            return self.version
        tag = (self.image or "").rpartition("/")[2].partition(":")[2]
        if tag and VERSION_RE.fullmatch(tag):
            return tag
        return next(iter(self.versions), "unversioned")


# Identifiers in masking and subset rules: plain PostgreSQL names (unquoted, no dots inside).
_SQL_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"


def _sql_path(parts: int, example: str) -> Any:
    regex = re.compile(r"\.".join([_SQL_NAME] * parts))

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a {'.'.join(['name'] * parts)} path like {example!r} "
                "(plain SQL names: letters, digits and '_')"
            )
        return value

    return AfterValidator(check)


ColumnPath = Annotated[str, _sql_path(3, "public.users.email")]
TablePath = Annotated[str, _sql_path(2, "public.orders")]
MASK_KEYWORDS = ("hash", "null", "redact")


class DataRules(_Model):
    """How this environment's data may leave it (clone --with-data, sync --type data).

    `masking` maps "schema.table.column" to hash | null | redact | a fixed text (YAML `null`
    means null). `subset` maps "schema.table" to a WHERE clause: only matching rows are kept.
    The clause is the matrix author's own SQL; it runs only in the copy, never in the source.
    """

    masking: dict[ColumnPath, str | None] = {}
    subset: dict[TablePath, Annotated[str, Field(min_length=1, max_length=2000)]] = {}

    @field_validator("subset")
    @classmethod
    def _one_statement(cls, value: dict[str, str]) -> dict[str, str]:
        for table, clause in value.items():
            if ";" in clause or "--" in clause or "/*" in clause:
                raise cross_field(
                    f"subset of {table}: a WHERE clause may not contain ';' or comments"
                )
        return value


class Environment(_Model):
    """One environment after `extends:` is resolved; services and variables are effective."""

    extends: str | None = None
    template: TemplateName  # default: the environment's name (or the one it extends)
    regions: Regions
    # The seed gives every section for every environment; a smaller environment (a preview,
    # a worker-only stack) may leave any of them out, and gets none of what it describes.
    clusters: list[Cluster] = []
    databases: Databases | None = None
    storage: Storage | None = None
    networking: Networking | None = None
    monitoring: Monitoring | None = None
    security: Security | None = None
    services: dict[ServiceName, Service] = {}
    variables: dict[VarName, str] = {}
    data: DataRules | None = None
    labels: dict[LabelKey, LabelValue] = {}  # what policies select environments by
    parity: EnvParity | None = None  # differences from the others this environment declares


class MatrixSpec(_Model):
    """The whole file, environments already resolved (see inherit.py)."""

    project: ProjectName = "envplane"
    environments: Annotated[dict[EnvName, Environment], Field(min_length=1)]
    deployment_strategies: dict[EnvName, DeploymentStrategy] = {}
    services: dict[ServiceName, Service] = {}
    variables: dict[VarName, str] = {}
    templates: dict[TemplateKey, dict[str, Any]] = {}  # partial environments, checked apart
    templates_dir: str | None = None
    parity: ParitySpec = ParitySpec()
    policies: PolicySpec = PolicySpec()
    previews: PreviewsSpec | None = None
