"""The words the matrix accepts: regions, switches, strategies, and checked names."""

from __future__ import annotations

import difflib
import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator

from envplane.errors import InvalidName
from envplane.names import check_env_name, check_ident

# AWS partitions aws, aws-cn, aws-us-gov and aws-eusc (botocore endpoints data, 2025).
AWS_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
        "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "cn-north-1", "cn-northwest-1", "us-gov-east-1", "us-gov-west-1", "eusc-de-east-1",
    }
)  # fmt: skip

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CLUSTER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def suggest(word: object, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or ''."""
    if not isinstance(word, str):
        return ""
    scored = [(difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices]
    best = max((score for score, _ in scored), default=0.0)
    if best < 0.6:
        return ""
    # Ties are shown together: 'us-est-1' is as close to us-east-1 as to us-west-1.
    close = sorted(c for score, c in scored if score == best)
    return f" (did you mean {' or '.join(map(repr, close))}?)"


def _on_off(value: object) -> object:
    # YAML reads `on`, `yes`, `true` as booleans; the seed spells switches as words.
    if value is True:
        return "enabled"
    if value is False:
        return "disabled"
    return value


Switch = Annotated[Literal["enabled", "disabled"], BeforeValidator(_on_off)]
Level = Annotated[Literal["disabled", "basic", "enabled"], BeforeValidator(_on_off)]
Strictness = Literal["basic", "standard", "strict"]
StrategyName = Literal["blue_green", "canary", "rolling", "recreate"]
ValidationLevel = Literal["basic", "standard", "comprehensive"]


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """Turn an InvalidName from envplane.names into the ValueError pydantic reports."""

    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidName as exc:
            raise ValueError(exc.message) from None

    return run


def _ident(what: str) -> Callable[[str], str]:
    return _checked(lambda value: check_ident(value, what=what))


def _pattern(
    regex: re.Pattern[str], what: str, example: str, rule: str = ""
) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(
                f"invalid {what} {value!r}: {rule or 'expected something like'} {example!r}"
            )
        return value

    return check


def _region(value: str) -> str:
    if value not in AWS_REGIONS:
        raise ValueError(f"unknown AWS region {value!r}{suggest(value, AWS_REGIONS)}")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network like '10.0.0.0/16': {exc}") from None
    if not 16 <= net.prefixlen <= 28:
        raise ValueError(f"a VPC block must be between /16 and /28, not /{net.prefixlen}")
    return value


def _command(value: object) -> object:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    return value


def _template_name(value: str) -> str:
    # The rule the renderers apply to the directory name (templates/environments/<name>); an
    # environment's own name is its default template, so a name that is a valid environment
    # name but not a template name (`1dev`) is refused here, located, not when rendering.
    try:
        return check_ident(value, what="template name")
    except InvalidName as exc:
        raise ValueError(
            f"{exc.message} (an environment's config templates default to its own name; "
            "set `template:` to one that starts with a letter)"
        ) from None


EnvName = Annotated[str, AfterValidator(_checked(check_env_name))]
ServiceName = Annotated[str, AfterValidator(_ident("service name"))]
TemplateName = Annotated[str, AfterValidator(_template_name)]
_PROJECT_RULE = "use 2-21 characters from a-z, 0-9 and '-', starting with a letter, like"
ProjectName = Annotated[
    str, AfterValidator(_pattern(PROJECT_RE, "project name", "shop", _PROJECT_RULE))
]
VarName = Annotated[str, AfterValidator(_pattern(VAR_RE, "variable name", "SENTRY_DSN"))]
Region = Annotated[str, AfterValidator(_region)]
Cidr = Annotated[str, AfterValidator(_cidr)]
ClusterName = Annotated[str, AfterValidator(_pattern(CLUSTER_RE, "cluster name", "shop-prod"))]
GroupName = Annotated[str, AfterValidator(_pattern(GROUP_RE, "node group name", "general"))]
InstanceType = Annotated[
    str,
    AfterValidator(
        _pattern(re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), "instance type", "m5.large")
    ),
]
DbClass = Annotated[
    str,
    AfterValidator(
        _pattern(re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$"), "instance class", "db.t3.medium")
    ),
]
CacheNodeType = Annotated[
    str,
    AfterValidator(
        _pattern(re.compile(r"^cache\.[a-z0-9-]+\.[a-z0-9]+$"), "node type", "cache.t3.micro")
    ),
]
EngineVersion = Annotated[
    str, AfterValidator(_pattern(re.compile(r"^\d{1,3}(\.\d{1,3}){0,2}$"), "version", "14.9"))
]
UrlPath = Annotated[str, AfterValidator(_pattern(re.compile(r"^/[!-~]*$"), "path", "/health"))]
Cpu = Annotated[str, AfterValidator(_pattern(re.compile(r"^\d+(\.\d+)?m?$"), "cpu", "250m"))]
Memory = Annotated[
    str, AfterValidator(_pattern(re.compile(r"^\d+(Ki|Mi|Gi|Ti|K|M|G|T)?$"), "memory", "256Mi"))
]
Command = Annotated[list[str], BeforeValidator(_command)]
TemplateKey = Annotated[str, AfterValidator(_ident("template name"))]
