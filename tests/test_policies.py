"""Policies: envplane's defaults for production-like environments, a matrix's own rules, and
switching one off with a reason. `check`, `create`, `update`, `deploy` and `promote` refuse an
environment that breaks one (exit 3), each violation located where its value is written;
nothing is recorded, and no server starts (the refusal comes first)."""

from __future__ import annotations

import json

import pytest

from envplane.errors import MatrixError
from envplane.matrix import load_matrix_text
from envplane.matrix.policies import DEFAULT_IDS
from tests.conftest import Project

NAME = "config/environment-matrix.yaml"  # the end of the path messages name

# prod passes every default; prod-eu extends it (and so carries its labels); stage is not
# production-like. The templates are the Sunday example's, which the fixture copies.
MATRIX = """\
project: shop
environments:
  prod:
    template: production
    labels: {tier: production}
    regions:
      primary: us-east-1
      secondary: us-west-2
    databases:
      primary:
        engine: postgresql
        version: "14.9"
        instance_class: db.r5.large
        multi_az: true
        backup_retention: 14
    networking:
      vpc_cidr: 10.0.0.0/16
      availability_zones: 2
      public_subnets: 2
      private_subnets: 2
      nat_gateways: 1
    monitoring:
      prometheus: enabled
      grafana: enabled
      jaeger: disabled
      elk_stack: disabled
    security:
      kms_encryption: enabled
      secrets_manager: enabled
      iam_roles: strict
      network_policies: enabled
    services:
      backend:
        replicas: 2
  prod-eu:
    extends: prod
    regions:
      primary: eu-west-1
      secondary: eu-central-1
  stage:
    template: staging
    regions:
      primary: us-east-1
services:
  backend:
    command: ["{python}", "app/backend.py"]
    port: 3000
    version: "1.0.0"
variables:
  SENTRY_DSN: ""
  ANALYTICS_ID: ""
deployment_strategies:
  prod:
    primary: rolling
    approval_required: true
  stage:
    primary: rolling
"""

# Each default rule broken once: (rule, text in MATRIX, its replacement, the key path, what
# the rule requires, the value shown, the line's text the violation is located at).
BROKEN = [
    ("multi-az", "multi_az: true", "multi_az: false", "databases.primary.multi_az",
     "== true", "false", "multi_az:"),
    ("backup-retention", "backup_retention: 14", "backup_retention: 3",
     "databases.primary.backup_retention", ">= 7", "3", "backup_retention:"),
    ("kms-encryption", "kms_encryption: enabled", "kms_encryption: basic",
     "security.kms_encryption", "== enabled", "basic", "kms_encryption:"),
    ("secrets-manager", "secrets_manager: enabled", "secrets_manager: disabled",
     "security.secrets_manager", "== enabled", "disabled", "secrets_manager:"),
    ("network-policies", "network_policies: enabled", "network_policies: basic",
     "security.network_policies", "== enabled", "basic", "network_policies:"),
    ("iam-roles-strict", "iam_roles: strict", "iam_roles: standard", "security.iam_roles",
     "== strict", "standard", "iam_roles:"),
    ("prometheus", "prometheus: enabled", "prometheus: basic", "monitoring.prometheus",
     "== enabled", "basic", "prometheus:"),
    ("availability-zones", "availability_zones: 2\n      public_subnets: 2\n      "
     "private_subnets: 2", "availability_zones: 1\n      public_subnets: 1\n      "
     "private_subnets: 1", "networking.availability_zones", ">= 2", "1", "availability_zones:"),
    # A key that is not written at all is located where it would be written: its mapping.
    ("secondary-region", "      secondary: us-west-2\n", "", "regions.secondary", "a value",
     "nothing (not set)", "  regions:"),
]  # fmt: skip


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def violation(text: str, env: str, rule: str, key: str, requires: str, got: str, at: str) -> str:
    return (
        f"{NAME}:{line_of(text, at)}: environments.{env}.{key}: rule {rule!r} "
        f"requires {requires}, got {got}"
    )


def write(project: Project, text: str) -> None:
    project.matrix.write_text(text)


def run(project: Project, *args: str) -> tuple[int, str, str]:
    done = project.run(*args)
    return done.returncode, done.stdout, done.stderr


def test_the_default_rules_all_hold_in_the_test_matrix_and_the_example(project: Project) -> None:
    assert project.run("check").returncode == 0  # the Sunday example's production passes
    listed = project.json("policies")
    assert isinstance(listed, dict)
    assert [r["id"] for r in listed["rules"]] == list(DEFAULT_IDS)
    assert all(r["environments"] == ["production"] for r in listed["rules"])
    assert listed["disabled"] == []

    write(project, MATRIX)
    code, out, err = run(project, "check")
    assert code == 0, err
    assert "OK, 3 environment(s)" in out


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_each_default_rule_broken_once_is_refused_and_located(
    project: Project, case: tuple[str, ...]
) -> None:
    rule, old, new, key, requires, got, at = case
    assert old in MATRIX
    text = MATRIX.replace(old, new, 1)
    write(project, text)
    # Only prod is production-like (approval_required): prod-eu, which extends it, is not.
    expected = [violation(text, "prod", rule, key, requires, got, at)]

    code, _, err = run(project, "check")
    assert code == 3, err
    assert "policy refused" in err
    for line in expected:
        assert line in err, err
    assert "breaks 1 rule(s) (1 violation(s))" in err  # only the broken rule
    assert f"disable: {{{rule}:" in err  # the hint says how to switch it off

    for args in (("create", "prod"), ("update", "prod"), ("promote", "rel-1", "--to", "prod"),
                 ("deploy", "prod", "rel-1", "--force")):  # fmt: skip
        code, _, err = run(project, *args)
        assert code == 3, (args, err)
        assert "policy refused: environment 'prod' breaks 1 rule(s)" in err
        assert expected[0] in err, err
        assert "prod-eu" not in err  # only the environment asked for
    # Nothing was recorded or started: no environment, no directory, no promotion.
    listed = project.json("list")
    assert isinstance(listed, list)
    assert all(e["status"] == "not created" for e in listed), listed
    assert not (project.home / "environments" / "prod").exists()
    assert project.json("promotions") == []
    # Another environment is not held back by prod's problem.
    code, _, err = run(project, "create", "stage", "--dry-run")
    assert code == 0, err


def test_a_missing_section_is_a_violation_at_the_environment(project: Project) -> None:
    start = MATRIX.index("    security:\n")
    end = MATRIX.index("    services:\n      backend:\n        replicas: 2")
    text = MATRIX[:start] + MATRIX[end:]
    write(project, text)
    code, _, err = run(project, "check", "-o", "json")
    assert code == 3
    error = json.loads(err)
    assert error["exit_code"] == 3
    where = f"{NAME}:{line_of(text, '  prod:')}: environments.prod.security."
    for key in ("kms_encryption", "secrets_manager", "network_policies", "iam_roles"):
        assert f"{where}{key}: " in error["error"], error["error"]
        assert f"environments.prod.security.{key}: rule" in error["error"]
    assert error["error"].count("got nothing (not set)") == 4


def test_disabled_with_a_reason_passes_and_policies_shows_why(project: Project) -> None:
    reason = "one region by design: customer data may not leave the US"
    text = MATRIX.replace("      secondary: us-west-2\n", "") + (
        f'policies:\n  disable:\n    secondary-region: "{reason}"\n'
    )
    write(project, text)
    code, out, err = run(project, "check")
    assert code == 0, err

    code, out, err = run(project, "policies")
    assert code == 0, err
    assert "8 rule(s) in force" in out
    assert "1 rule(s) disabled:" in out
    assert f"secondary-region: {reason}" in out
    assert f"{NAME}:{line_of(text, 'secondary-region:')}; would hold in: prod" in out

    listed = json.loads(run(project, "policies", "-o", "json")[1])
    assert listed["disabled"] == [
        {
            "id": "secondary-region",
            "reason": reason,
            "line": line_of(text, "secondary-region:"),
            "environments": ["prod"],
        }
    ]
    assert "secondary-region" not in [r["id"] for r in listed["rules"]]

    # A disable needs a reason; an id that is no rule is refused where it is written.
    for bad, message in (
        ('    secondary-region: ""\n', "at least 1 character"),
        ('    secondary-regoin: "typo"\n', "no rule 'secondary-regoin' to disable"),
    ):
        write(project, text.replace(f'    secondary-region: "{reason}"\n', bad))
        code, _, err = run(project, "check")
        assert code == 2, err
        assert f"{NAME}:{line_of(text, 'secondary-region:')}: policies.disable." in err
        assert message in err


CUSTOM = """\
policies:
  rules:
    - id: two-replicas
      key: services.*.replicas
      op: ge
      value: 2
      applies_to: {labels: {tier: production}}
      description: one replica may be replaced while the other serves
"""


def test_a_custom_rule_selects_environments_by_label(project: Project) -> None:
    write(project, MATRIX + CUSTOM)
    code, _, err = run(project, "check")
    assert code == 0, err
    listed = json.loads(run(project, "policies", "-o", "json")[1])
    mine = listed["rules"][-1]
    assert mine == {
        "id": "two-replicas",
        "key": "services.*.replicas",
        "op": "ge",
        "value": 2,
        "requires": ">= 2",
        "description": "one replica may be replaced while the other serves",
        "applies_to": "labels tier=production",
        "environments": ["prod", "prod-eu"],  # prod-eu has prod's labels, through extends
        "set_at": str(project.matrix) + f":{line_of(MATRIX + CUSTOM, '- id: two-replicas')}",
    }
    assert listed["rules"][0]["set_at"].startswith("envplane default (")

    text = MATRIX.replace("        replicas: 2", "        replicas: 1") + CUSTOM
    write(project, text)
    code, _, err = run(project, "check")
    assert code == 3, err
    for env in ("prod", "prod-eu"):
        line = violation(
            text, env, "two-replicas", "services.backend.replicas", ">= 2", "1", "replicas: 1"
        )
        assert line in err, err
    assert "environments.stage" not in err  # no label: the rule does not hold there


def rule_text(
    key: str = "databases.primary.multi_az",
    op: str = "eq",
    value: str = "true",
    rule_id: str = "mine",
) -> str:
    return (
        f"policies:\n  rules:\n    - id: {rule_id}\n      key: {key}\n      op: {op}\n"
        f"      value: {value}\n"
    )


@pytest.mark.parametrize(
    ("rule", "needle", "key", "fragment"),
    [
        (rule_text(key="databases.primary.multi_azz"), "multi_azz", "policies.rules[0].key",
         "no key 'multi_azz' under databases.primary"),
        (rule_text(key="dns.zone"), "dns.zone", "policies.rules[0].key",
         "no key 'dns' in an environment"),
        (rule_text(key="clusters.name"), "clusters.name", "policies.rules[0].key",
         "clusters is a list"),
        (rule_text(key="a..b"), "a..b", "policies.rules[0].key", "is not a key path"),
        (rule_text(op="greater"), "greater", "policies.rules[0].op", "got 'greater'"),
        (rule_text(key="monitoring.prometheus", value="on-call"), "on-call",
         "policies.rules[0].value", "'on-call' is not a value monitoring.prometheus can have"),
        (rule_text(key="databases.primary.multi_az", value="3"), "value: 3",
         "policies.rules[0].value", "3 is not a value databases.primary.multi_az can have"),
        (rule_text(key="monitoring.prometheus", op="ge", value="2"), "value: 2",
         "policies.rules[0].value", "`ge` compares numbers"),
        (rule_text(key="databases.primary.backup_retention", op="ge", value="seven"), "seven",
         "policies.rules[0].value", "`ge` needs a number, got 'seven'"),
        (rule_text(op="in", value="true"), "value: true", "policies.rules[0].value",
         "`in` needs a list of values"),
        (rule_text(op="present"), "value: true", "policies.rules[0].value",
         "`present` takes no value"),
        (rule_text(key="databases"), "value: true", "policies.rules[0].value",
         "databases is a section"),
        (rule_text(rule_id="multi-az"), "id: multi-az", "policies.rules[0].id",
         "taken by a default rule"),
        (rule_text() + "      applies_to: {environments: [prod, qa-env]}\n", "applies_to",
         "policies.rules[0].applies_to.environments[1]", "no environment named 'qa-env'"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_at_its_line(rule: str, needle: str, key: str, fragment: str) -> None:
    text = MATRIX + rule
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, NAME)
    assert str(info.value).startswith(f"{NAME}:{line_of(text, needle)}: {key}: "), str(info.value)
    assert fragment in str(info.value)


def test_a_rule_on_a_key_that_does_not_exist_exits_2_from_every_command(
    project: Project,
) -> None:
    text = MATRIX + CUSTOM.replace("services.*.replicas", "services.*.replica")
    write(project, text)
    for args in (("check",), ("policies",), ("create", "stage", "--dry-run")):
        code, _, err = run(project, *args)
        assert code == 2, (args, err)
        assert f"{NAME}:{line_of(text, 'services.*.replica')}: policies.rules[0].key: " in err
        assert "no key 'replica' under services.*" in err
