"""Every validation rule: a bad matrix fails with file, line and dotted key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix import load_matrix_text

SEED = (Path(__file__).parent / "data" / "matrix" / "seed.yaml").read_text()
NAME = "config/environment-matrix.yaml"
PROD = "environments.production"
GROUP0 = f"{PROD}.clusters[0].node_groups[0]"
SERVICE = 'services:\n  web:\n    command: "{python} app.py"\n'


def sub(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return apply


def add(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def located(text: str, needle: str | int, key: str, fragment: str) -> MatrixError:
    """Loading fails at the line containing `needle` (or line `needle`), naming `key`."""
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, NAME)
    err = info.value
    line = needle if isinstance(needle, int) else line_of(text, needle)
    assert str(err).startswith(f"{NAME}:{line}: {key}: "), str(err)
    assert fragment in str(err), str(err)
    assert (err.file, err.key) == (NAME, key)
    return err


CASES = [
    # unknown keys, with a suggestion
    (
        "unknown-key",
        sub("min_size: 3", "min_sise: 3"),
        "min_sise",
        f"{GROUP0}.min_sise",
        "unknown key 'min_sise' (did you mean 'min_size'?)",
    ),
    (
        "unknown-top-key",
        add("deployment_strategy: {}\n"),
        "deployment_strategy:",
        "deployment_strategy",
        "did you mean 'deployment_strategies'?",
    ),
    (
        "unknown-section",
        sub("    storage:\n", "    storrage:\n"),
        "storrage:",
        f"{PROD}.storrage",
        "did you mean 'storage'?",
    ),
    # wrong types
    (
        "int-as-word",
        sub("availability_zones: 3", "availability_zones: three"),
        "availability_zones: three",
        f"{PROD}.networking.availability_zones",
        "valid integer",
    ),
    (
        "int-as-text",
        sub("nat_gateways: 3", 'nat_gateways: "3"'),
        'nat_gateways: "3"',
        f"{PROD}.networking.nat_gateways",
        "valid integer",
    ),
    (
        "float-count",
        sub("public_subnets: 3", "public_subnets: 1.5"),
        "public_subnets: 1.5",
        f"{PROD}.networking.public_subnets",
        "valid integer",
    ),
    (
        "bool",
        sub("multi_az: true", "multi_az: sometimes"),
        "multi_az: sometimes",
        f"{PROD}.databases.primary.multi_az",
        "valid boolean",
    ),
    (
        "version-number",
        sub('version: "14.9"', "version: 14.9"),
        "version: 14.9",
        f"{PROD}.databases.primary.version",
        "expected text, got the number 14.9",
    ),
    (
        "list-for-mapping",
        sub(
            "    regions:\n      primary: us-east-1\n      secondary: us-west-2",
            "    regions: [us-east-1]",
        ),
        "regions: [us-east-1]",
        f"{PROD}.regions",
        "valid dictionary",
    ),
    # names
    (
        "env-name-case",
        sub("  staging:\n", "  Staging:\n"),
        "Staging:",
        "environments.Staging",
        "invalid environment name 'Staging'",
    ),
    (
        "env-name-short",
        sub("  staging:\n", "  qa:\n"),
        "  qa:",
        "environments.qa",
        "invalid environment name 'qa'",
    ),
    (
        "project",
        lambda t: "project: Sunday\n" + t,
        "project: Sunday",
        "project",
        "invalid project name 'Sunday'",
    ),
    (
        "template-name",
        sub("  staging:\n", "  staging:\n    template: ../etc\n"),
        "template: ../",
        "environments.staging.template",
        "invalid",
    ),
    # sizes
    (
        "desired-below-min",
        sub("desired_size: 5", "desired_size: 2"),
        "desired_size: 2",
        f"{GROUP0}.desired_size",
        "desired_size 2 is below min_size 3",
    ),
    (
        "desired-above-max",
        sub("desired_size: 5", "desired_size: 25"),
        "desired_size: 25",
        f"{GROUP0}.desired_size",
        "desired_size 25 is above max_size 20",
    ),
    (
        "max-below-min",
        sub("max_size: 20", "max_size: 2"),
        "max_size: 2",
        f"{GROUP0}.max_size",
        "max_size 2 is below min_size 3",
    ),
    (
        "second-group",
        sub(
            "min_size: 2\n            max_size: 10\n            desired_size: 3",
            "min_size: 2\n            max_size: 10\n            desired_size: 11",
        ),
        "desired_size: 11",
        f"{PROD}.clusters[0].node_groups[1].desired_size",
        "above max_size 10",
    ),
    (
        "dup-group",
        sub("name: memory-optimized", "name: compute-optimized"),
        "node_groups:",
        f"{PROD}.clusters[0].node_groups",
        "repeated: compute-optimized",
    ),
    # networking
    (
        "cidr-host-bits",
        sub("10.1.0.0/16", "10.1.0.1/16"),
        "10.1.0.1/16",
        "environments.staging.networking.vpc_cidr",
        "host bits set",
    ),
    (
        "cidr-garbage",
        sub("10.1.0.0/16", "banana"),
        "vpc_cidr: banana",
        "environments.staging.networking.vpc_cidr",
        "not an IPv4 network",
    ),
    (
        "cidr-too-big",
        sub("10.1.0.0/16", "10.0.0.0/8"),
        "10.0.0.0/8",
        "environments.staging.networking.vpc_cidr",
        "between /16 and /28",
    ),
    (
        "az-range",
        sub("availability_zones: 3", "availability_zones: 0"),
        "availability_zones: 0",
        f"{PROD}.networking.availability_zones",
        "greater than or equal to 1",
    ),
    (
        "nat-without-public",
        sub("public_subnets: 2", "public_subnets: 0"),
        "nat_gateways: 1",
        "environments.staging.networking.nat_gateways",
        "public_subnets is 0",
    ),
    # databases
    (
        "engine",
        sub("engine: postgresql", "engine: mysql"),
        "engine: mysql",
        f"{PROD}.databases.primary.engine",
        "expected 'postgresql', got 'mysql'",
    ),
    (
        "cache-engine",
        sub("engine: redis", "engine: memcached"),
        "engine: memcached",
        f"{PROD}.databases.cache.engine",
        "expected 'redis'",
    ),
    (
        "cache-nodes",
        sub("num_cache_nodes: 3", "num_cache_nodes: -1"),
        "num_cache_nodes: -1",
        f"{PROD}.databases.cache.num_cache_nodes",
        "greater than or equal to 1",
    ),
    (
        "retention",
        sub("backup_retention: 30", "backup_retention: 99"),
        "backup_retention: 99",
        f"{PROD}.databases.primary.backup_retention",
        "less than or equal to 35",
    ),
    (
        "instance-class",
        sub("db.r5.4xlarge", "r5.4xlarge"),
        "instance_class: r5.4xlarge",
        f"{PROD}.databases.primary.instance_class",
        "invalid instance class",
    ),
    # regions
    (
        "region",
        sub("primary: us-east-1", "primary: us-east-7"),
        "us-east-7",
        f"{PROD}.regions.primary",
        "unknown AWS region 'us-east-7'",
    ),
    (
        "region-typo",
        sub("secondary: us-west-2", "secondary: us-wset-2"),
        "us-wset-2",
        f"{PROD}.regions.secondary",
        "did you mean 'us-west-2'?",
    ),
    (
        "region-twice",
        sub("secondary: us-west-2", "secondary: us-east-1"),
        "secondary: us-east-1",
        f"{PROD}.regions.secondary",
        "must differ",
    ),
    (
        "cluster-region",
        sub("region: us-east-1", "region: mars-1"),
        "mars-1",
        f"{PROD}.clusters[0].region",
        "unknown AWS region",
    ),
    (
        "cluster-outside",
        sub("region: us-east-1", "region: eu-west-1"),
        "region: eu-west-1",
        f"{PROD}.clusters[0].region",
        "neither the primary nor the secondary",
    ),
    # on/off values
    (
        "switch",
        sub("versioning: enabled", "versioning: maybe"),
        "versioning: maybe",
        f"{PROD}.storage.versioning",
        "expected 'enabled' or 'disabled', got 'maybe'",
    ),
    (
        "level",
        sub("prometheus: enabled", "prometheus: strict"),
        "prometheus: strict",
        f"{PROD}.monitoring.prometheus",
        "expected 'disabled', 'basic' or 'enabled'",
    ),
    (
        "strictness-bool",
        sub("iam_roles: strict", "iam_roles: true"),
        "iam_roles: true",
        f"{PROD}.security.iam_roles",
        "expected 'basic', 'standard' or 'strict'",
    ),
    (
        "encryption",
        sub("encryption: AES256", "encryption: rot13"),
        "rot13",
        f"{PROD}.storage.encryption",
        "expected 'AES256' or 'aws:kms'",
    ),
    # deployment strategies
    (
        "strategy",
        sub("primary: blue_green", "primary: bluegreen"),
        "bluegreen",
        "deployment_strategies.production.primary",
        "did you mean 'blue_green'?",
    ),
    (
        "alternative",
        sub("[canary]", "[canery]"),
        "[canery]",
        "deployment_strategies.production.alternatives[0]",
        "did you mean 'canary'?",
    ),
    (
        "validation",
        sub("validation_required: comprehensive", "validation_required: full"),
        "validation_required: full",
        "deployment_strategies.production.validation_required",
        "expected 'basic', 'standard' or 'comprehensive'",
    ),
    (
        "strategy-env",
        sub("strategies:\n  production:", "strategies:\n  prod:"),
        "  prod:",
        "deployment_strategies.prod",
        "no environment named 'prod'",
    ),
    # additions
    (
        "service-replicas",
        add(SERVICE + "    replicas: 0\n"),
        "replicas: 0",
        "services.web.replicas",
        "greater than or equal to 1",
    ),
    (
        "service-port",
        add(SERVICE + "    port: 70000\n"),
        "port: 70000",
        "services.web.port",
        "less than or equal to 65535",
    ),
    (
        "service-path",
        add(SERVICE + "    health_path: health\n"),
        "health_path",
        "services.web.health_path",
        "invalid path 'health'",
    ),
    ("service-cpu", add(SERVICE + "    cpu: lots\n"), "cpu: lots", "services.web.cpu", "'250m'"),
    (
        "service-memory",
        add(SERVICE + "    memory: 1GB\n"),
        "memory: 1GB",
        "services.web.memory",
        "'256Mi'",
    ),
    (
        "service-quote",
        add('services:\n  web:\n    command: "app \\"x"\n'),
        "command:",
        "services.web.command",
        "No closing quotation",
    ),
    (
        "service-nothing",
        add("services:\n  web:\n    port: 80\n"),
        "  web:",
        "services.web",
        "needs a `command`",
    ),
    (
        "service-name",
        add("services:\n  Web:\n    image: x\n"),
        "  Web:",
        "services.Web",
        "invalid service name 'Web'",
    ),
    (
        "service-env-name",
        add(SERVICE + "    env: {1X: a}\n"),
        "env:",
        "services.web.env.1X",
        "invalid variable name",
    ),
    (
        "service-unknown-key",
        add(SERVICE + "    replica: 2\n"),
        "replica: 2",
        "services.web.replica",
        "did you mean 'replicas'?",
    ),
    (
        "override-undeclared",
        sub("  staging:\n", "  staging:\n    services:\n      api: {}\n"),
        "api: {}",
        "environments.staging.services.api",
        "not declared under the top-level",
    ),
    (
        "variables-type",
        add("variables:\n  SENTRY_DSN: 12\n"),
        "SENTRY_DSN: 12",
        "variables.SENTRY_DSN",
        "expected text, got a number",
    ),
    (
        "templates-dir",
        add("templates_dir: 5\n"),
        "templates_dir: 5",
        "templates_dir",
        "expected text",
    ),
    (
        "no-environments",
        lambda t: "environments: {}\n",
        "environments:",
        "environments",
        "at least 1 item",
    ),
]


@pytest.mark.parametrize(
    ("change", "needle", "key", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_rule(change: Callable[[str], str], needle: str, key: str, fragment: str) -> None:
    located(change(SEED), needle, key, fragment)


def test_missing_key_points_at_its_parent() -> None:
    text = SEED.replace("        multi_az: true\n", "", 1)
    parent = line_of(text, "engine: postgresql") - 1  # production's `primary:` line
    assert text.splitlines()[parent - 1] == "      primary:"
    located(
        text, parent, f"{PROD}.databases.primary.multi_az", "required key 'multi_az' is missing"
    )


def test_yaml_booleans_are_switches() -> None:
    text = SEED.replace("versioning: enabled", "versioning: on", 1)
    text = text.replace("jaeger: disabled", "jaeger: false", 1)
    matrix = load_matrix_text(text, NAME)
    assert matrix.environment("production").storage.versioning == "enabled"
    assert matrix.environment("staging").monitoring.jaeger == "disabled"


def test_secret_values_are_never_echoed() -> None:
    text = SEED + 'variables:\n  SENTRY_DSN: "https://key@sentry"\n  BAD-NAME: "s3cr3t"\n'
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, NAME)
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in str(info.value.hint)


def test_several_problems_are_counted() -> None:
    text = SEED.replace("min_size: 3", "min_size: -3").replace("engine: redis", "engine: x")
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, NAME)
    assert "min_size" in str(info.value)  # the first in the file comes first
    assert info.value.hint is not None and "more problem(s)" in info.value.hint
