"""The REST API fuzzed against its own OpenAPI (schemathesis, in process): no 5xx, and every
answer matches the schema the API publishes (status codes, content types, bodies).

Bounded: a few examples per operation, no shrinking, a deadline per example; one admin token
(every route reachable) and one viewer token (every change refused). The fuzzer's requests
change nothing real: names it makes up name no environment, except `POST /previews`, which
would create a whole environment from the default source for any branch, so that one is
fuzzed as a viewer only (it must say 403 with a valid problem document).

Every check schemathesis runs by default, but one: "a schema-valid request is accepted". The
schema cannot say everything the service layer checks (an environment name's rules, whether
it exists), so a 400 with a problem document for such a request is right, not a failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from envplane.api import create_app
from tests.apikit import bearer, make_token, settings_of
from tests.conftest import Project

EXAMPLES = 8
SETTINGS = settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is printed as found
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture
def fuzzed(project: Project) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    tokens = {r: make_token(project, f"f-{r}", r) for r in ("viewer", "admin")}
    app = create_app(settings=settings_of(project), throttle_base=0.0)
    with TestClient(app):  # runs the app's lifespan (workers shut down at the end)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema, tokens


def _fuzz(operation: object, headers: dict[str, str], counted: list[int]) -> None:
    strategy = operation.as_strategy()  # type: ignore[attr-defined]

    @SETTINGS
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        counted.append(1)
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()


def test_no_5xx_and_every_answer_matches_the_schema(
    fuzzed: tuple[schemathesis.BaseSchema, dict[str, str]],
) -> None:
    schema, tokens = fuzzed
    failures: list[str] = []
    counted: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        route = (operation.method.upper(), operation.path)
        for role in ["viewer"] if route == ("POST", "/previews") else ["admin", "viewer"]:
            try:
                _fuzz(operation, bearer(tokens[role]), counted)
            except (Exception, BaseExceptionGroup) as exc:  # one report names every failure
                failures.append(f"{route[0]} {route[1]} as {role}: {exc}")
    assert len(operations) >= 40
    assert len(counted) >= len(operations) * EXAMPLES, (len(counted), failures[:3])
    assert not failures, "\n\n".join(failures)
