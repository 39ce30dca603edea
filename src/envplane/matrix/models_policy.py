"""`policies:` — rules an environment must keep, as data (issue 12).

    policies:
      rules:
        - id: prod-replicas
          key: services.backend.replicas      # a key path of an environment
          op: ge                              # eq ne ge gt le lt in not_in present absent
          value: 2
          applies_to: {labels: {tier: production}}
          description: two replicas survive one being replaced
      disable:
        secondary-region: "one region by design: the data may not leave the EU"

What the model cannot see (the key is one an environment has, the value is of that key's
type, a disabled id is a rule) is checked by `matrix.policies.check_rules`, at the rule's line.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from envplane.matrix.modelbase import LabelKey, LabelValue, StrictModel
from envplane.matrix.vocab import EnvName

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Operator = Literal["eq", "ne", "ge", "gt", "le", "lt", "in", "not_in", "present", "absent"]
Scalar = str | bool | int | float
PolicyValue = Scalar | list[Scalar]
_ID_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


def _rule_id(value: str) -> str:
    # The same shape as a label: it is written as a YAML key under `disable:`, and in messages.
    if not _ID_RE.fullmatch(value):
        raise ValueError(
            f"invalid rule id {value!r}: up to 63 lower-case letters, digits, '.', '_', '-', "
            "starting and ending with a letter or digit, like 'prod-replicas'"
        )
    return value


RuleId = Annotated[str, AfterValidator(_rule_id)]
KeyPathText = Annotated[str, Field(min_length=1, max_length=300)]


class AppliesTo(StrictModel):
    """Which environments a rule holds in. Every selector given must match (none given: every
    environment): `environments` by name, `approval_required` by the environment's
    `deployment_strategies` entry, `labels` by the environment's `labels:` (all of them)."""

    environments: list[EnvName] | None = None
    approval_required: bool | None = None
    labels: dict[LabelKey, LabelValue] = {}


class PolicyRule(StrictModel):
    id: RuleId
    key: KeyPathText  # `databases.primary.multi_az`, `services.*.replicas`, `clusters[0].name`
    op: Operator
    value: PolicyValue | None = None  # none for present/absent; a list for in/not_in
    applies_to: AppliesTo = AppliesTo()
    description: Reason | None = None  # why the rule exists, shown with a violation


class PolicySpec(StrictModel):
    rules: list[PolicyRule] = []  # the matrix's own, beside envplane's defaults
    disable: dict[str, Reason] = {}  # rule id -> why it does not apply here
