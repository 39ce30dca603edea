"""Every route of the REST API, times every role: allowed, or 403. The routes come from the app's
own /openapi.json, so a new route without an entry in RULES fails here. Then scopes,
production-like environments, expired and revoked tokens, sessions and CSRF, the sign-in
throttle, and the four-eyes rule through the API and across CLI and API identities."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from envplane.api import create_app
from envplane.service.identities import add_user
from tests.apikit import ROLES, bearer, make_token, open_store, settings_of
from tests.conftest import Project

PUBLIC, ANY = "public", "any"
MAY = {
    "read": {"viewer", "deployer", "approver", "admin"},
    "change": {"deployer", "admin"},
    "approve": {"approver", "admin"},
    "admin": {"admin"},
    ANY: set(ROLES),
    PUBLIC: set(ROLES),
}
NONE = "zz-none"  # a valid environment name no matrix or store knows: no side effects
# (method, path) -> (what it needs, the request an allowed role sends: answered 4xx, not 403,
# and changes nothing)
RULES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("GET", "/healthz"): (PUBLIC, {}),
    ("GET", "/metrics"): (PUBLIC, {}),
    ("POST", "/session"): (PUBLIC, {"json": {}}),
    ("GET", "/session"): (ANY, {}),
    ("DELETE", "/session"): (ANY, {}),
    ("GET", "/environments"): ("read", {}),
    ("POST", "/environments"): ("change", {"json": {"name": NONE}}),
    ("GET", "/environments/{env}"): ("read", {}),
    ("DELETE", "/environments/{env}"): ("change", {}),
    ("GET", "/environments/{env}/plan"): ("read", {}),
    ("GET", "/environments/{env}/status"): ("read", {}),
    ("GET", "/environments/{env}/drift"): ("read", {}),
    ("POST", "/environments/{env}/validate"): ("change", {}),
    ("POST", "/environments/{env}/update"): ("change", {}),
    ("POST", "/environments/{env}/backups"): ("change", {"json": {}}),
    ("POST", "/environments/{env}/restore"): ("change", {"json": {"backup_id": "nope"}}),
    ("POST", "/environments/{env}/clone"): ("change", {"json": {"source": "zz-other"}}),
    ("POST", "/environments/{env}/sync"): (
        "change",
        {"json": {"source": "zz-other", "sync_type": "data"}},
    ),
    ("POST", "/environments/{env}/deploy"): ("change", {"json": {"release": "r-none"}}),
    ("GET", "/operations"): ("read", {}),
    ("GET", "/operations/{ref}"): ("read", {}),
    ("GET", "/operations/{ref}/events"): ("read", {}),
    ("POST", "/operations/{ref}/resume"): ("change", {}),
    ("GET", "/backups"): ("read", {}),
    ("GET", "/releases"): ("read", {}),
    ("POST", "/releases"): ("change", {"json": {"pins": ["malformed"]}}),
    ("GET", "/releases/{release_id}"): ("read", {}),
    ("GET", "/promotions"): ("read", {}),
    ("POST", "/promotions"): ("change", {"json": {"release": "r-none", "environment": NONE}}),
    ("POST", "/promotions/{promotion_id}/approve"): ("approve", {"json": {}}),
    ("POST", "/promotions/{promotion_id}/reject"): ("approve", {"json": {}}),
    ("GET", "/previews"): ("read", {}),
    ("POST", "/previews"): ("change", {"json": {"branch": "feature/x", "source": "zz-other"}}),
    ("POST", "/previews/{name}/extend"): ("change", {"json": {"ttl": "1h"}}),
    ("DELETE", "/previews/{name}"): ("change", {}),
    ("GET", "/parity"): ("read", {"params": {"envs": [NONE]}}),
    ("GET", "/cost"): ("read", {"params": {"envs": [NONE]}}),
    ("GET", "/audit"): ("admin", {}),
    ("GET", "/tokens"): ("admin", {}),
    ("POST", "/tokens"): ("admin", {"json": {"name": "Not A Name", "role": "viewer"}}),
    ("DELETE", "/tokens/{name}"): ("admin", {}),
}
PATH_VALUES = {
    "env": NONE,
    "ref": "op-none",
    "release_id": "r-none",
    "promotion_id": "p-none",
    "name": NONE,
}


@pytest.fixture
def api(project: Project) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = {role: make_token(project, f"t-{role}", role) for role in ROLES}
    app = create_app(settings=settings_of(project), throttle_base=0.3)
    with TestClient(app) as client:
        yield client, tokens


def _routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


def _url(path: str) -> str:
    for key, value in PATH_VALUES.items():
        path = path.replace("{" + key + "}", value)
    return path


def test_every_route_has_a_rule_and_every_role_is_allowed_or_403(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = api
    routes = _routes(client)
    missing = [r for r in routes if r not in RULES]
    assert not missing, f"routes without an entry in RULES: {missing}"
    stale = [r for r in RULES if r not in routes]
    assert not stale, f"RULES for routes the API no longer has: {stale}"
    for method, path in routes:
        need, request = RULES[(method, path)]
        for role in ROLES:
            answer = client.request(method, _url(path), headers=bearer(tokens[role]), **request)
            where = f"{method} {path} as {role}: {answer.status_code} {answer.text[:300]}"
            if role in MAY[need]:
                assert answer.status_code not in (401, 403), where
                assert answer.status_code < 500, where
            else:
                assert answer.status_code == 403, where
                problem = answer.json()
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert f"({role}) may not {need}" in problem["detail"], where
        if need not in (PUBLIC,):
            anonymous = client.request(method, _url(path), **request)
            assert anonymous.status_code == 401, f"{method} {path} without credentials"
    with open_store_of(client) as store:
        denied = [e for e in store.audit_entries(limit=10_000) if e.outcome == "denied"]
    assert denied, "refusals are audited"
    assert all(e.source and e.source.startswith("api ") for e in denied)
    assert {e.actor for e in denied} >= {"api:t-viewer", "api:t-approver"}


def open_store_of(client: TestClient) -> Any:
    server = client.app.state.envplane  # type: ignore[attr-defined]
    return server.store.with_actor("test")


def test_secrets_are_for_admins_only(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    for role in ("viewer", "deployer", "approver"):
        answer = client.get(
            "/environments/development", params={"show_secrets": True}, headers=bearer(tokens[role])
        )
        assert answer.status_code == 403, answer.text
    answer = client.get(
        "/environments/development", params={"show_secrets": True}, headers=bearer(tokens["admin"])
    )
    assert answer.status_code == 200, answer.text


def test_a_scope_bounds_changes_and_production_needs_its_name(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    pr = bearer(make_token(project, "ci", "deployer", envs="pr-*"))
    staging = client.post("/environments", json={"name": "staging"}, headers=pr)
    assert staging.status_code == 403, staging.text
    assert "scoped to 'pr-*'" in staging.json()["detail"]
    for method, url, body in (
        ("POST", "/environments/staging/deploy", {"release": "r-1"}),
        ("DELETE", "/environments/staging", None),
        ("POST", "/environments/staging/backups", {}),
        ("POST", "/environments/staging/validate", None),
    ):
        answer = client.request(method, url, json=body, headers=pr)
        assert answer.status_code == 403, f"{method} {url}: {answer.text}"
    inside = client.post("/environments", json={"name": "pr-zz-none"}, headers=pr)
    assert inside.status_code == 404, inside.text  # allowed; the matrix has no such env
    assert (
        client.get("/environments/staging", headers=pr).status_code == 200
    )  # reads are not scoped
    # production is approval_required: an unscoped deployer may not touch it, nor a glob ...
    anywhere = bearer(tokens["deployer"])
    prod = client.post("/environments/production/deploy", json={"release": "r-1"}, headers=anywhere)
    assert prod.status_code == 403 and "production-like" in prod.json()["detail"], prod.text
    glob = bearer(make_token(project, "globby", "deployer", envs="prod*"))
    assert client.delete("/environments/production", headers=glob).status_code == 403
    # ... but one scoped to it by name may (the service answers: it does not exist yet)
    named = bearer(make_token(project, "release-bot", "deployer", envs="production"))
    answer = client.delete("/environments/production", headers=named)
    assert answer.status_code == 400 and "does not exist" in answer.json()["detail"], answer.text


def test_expired_revoked_and_unknown_tokens_are_401(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    short = make_token(project, "brief", "viewer", expires="1s")
    assert client.get("/environments", headers=bearer(short)).status_code == 200
    time.sleep(1.2)
    expired = client.get("/environments", headers=bearer(short))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert expired.headers["www-authenticate"] == "Bearer"
    assert project.run("token", "revoke", "t-viewer").returncode == 0
    revoked = client.get("/environments", headers=bearer(tokens["viewer"]))
    assert revoked.status_code == 401, revoked.text
    unknown = client.get("/environments", headers=bearer("ept_" + "x" * 43))
    assert unknown.status_code == 401
    listed = project.json("token", "list")
    assert isinstance(listed, list)
    states = {t["name"]: t for t in listed}
    assert states["t-viewer"]["revoked_at"] is not None
    assert states["t-admin"]["last_used_at"] is None  # not used in this test
    assert "secret_hash" not in states["t-viewer"] and "token" not in states["t-viewer"]


def test_session_cookie_csrf_and_sign_out(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, _tokens = api
    with open_store(project) as store:
        add_user(store, "dora", "deployer", "a long passphrase 1")
    signed = client.post("/session", json={"user": "dora", "password": "a long passphrase 1"})
    assert signed.status_code == 200, signed.text
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    csrf = signed.json()["csrf_token"]
    assert client.get("/session").json()["name"] == "dora"  # the cookie alone reads
    no_csrf = client.post("/environments", json={"name": NONE})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    wrong = client.post("/environments", json={"name": NONE}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    right = client.post("/environments", json={"name": NONE}, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 404, right.text  # through: the matrix has no such env
    out = client.delete("/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    client.cookies.clear()
    client.cookies.set("envplane_session", cookie.split(";")[0].split("=", 1)[1])
    assert client.get("/session").status_code == 401  # the old cookie is dead
    client.cookies.clear()


def test_failed_sign_ins_are_slowed_down_and_audited(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, _ = api
    with open_store(project) as store:
        add_user(store, "eve", "viewer", "the right passphrase")
    for _ in range(3):  # the first three are free (typos)
        bad = client.post("/session", json={"user": "eve", "password": "wrong passphrase!"})
        assert bad.status_code == 401
    slowed = client.post("/session", json={"user": "eve", "password": "the right passphrase"})
    assert slowed.status_code == 429, slowed.text  # even the right password waits
    assert int(slowed.headers["retry-after"]) >= 1
    time.sleep(0.35)
    bad = client.post("/session", json={"user": "eve", "password": "wrong again!!"})
    assert bad.status_code == 401  # the wait is over; this failure doubles it
    assert client.post("/session", json={"user": "eve", "password": "x" * 12}).status_code == 429
    time.sleep(0.65)
    ok = client.post("/session", json={"user": "eve", "password": "the right passphrase"})
    assert ok.status_code == 200, ok.text
    with open_store(project) as store:
        rows = store.audit_entries(limit=100)
    outcomes = [r.outcome for r in rows if r.action == "sign-in"]
    assert outcomes.count("unauthenticated") == 4 and outcomes.count("throttled") == 2
    assert "signed in" in outcomes
    assert all("passphrase" not in r.detail for r in rows)


def _promotion(project: Project, requested_by: str) -> str:
    """A pending promotion of a release into production, requested by `requested_by` (as
    `envplane promote` records it; the gates before approval are the delivery tests')."""
    with open_store(project, actor=requested_by) as store:
        release = store.create_release({"backend": "1.0.0"}, config_digest="0" * 64)
        promotion = store.create_promotion(
            release.id, "production", from_env="staging", approvals_needed=1
        )
    return promotion.id


def test_the_requester_cannot_approve_through_the_api(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = api
    requester = make_token(project, "rm", "approver")
    promotion = _promotion(project, "api:rm")
    own = client.post(f"/promotions/{promotion}/approve", json={}, headers=bearer(requester))
    assert own.status_code == 409 and "four-eyes" in own.json()["detail"], own.text
    own = client.post(f"/promotions/{promotion}/reject", json={}, headers=bearer(requester))
    assert own.status_code == 409
    pending = client.get("/promotions", headers=bearer(requester)).json()
    assert [p["status"] for p in pending if p["id"] == promotion] == ["pending"]
    other = client.post(
        f"/promotions/{promotion}/approve",
        json={"message": "ok"},
        headers=bearer(tokens["approver"]),
    )
    assert other.status_code == 200, other.text
    assert other.json()["status"] == "approved"
    assert [d["actor"] for d in other.json()["decisions"]] == ["api:t-approver"]


def test_four_eyes_holds_across_the_cli_and_the_api(
    project: Project, api: tuple[TestClient, dict[str, str]]
) -> None:
    """A promotion asked for on the CLI (as the OS account `root`) cannot be approved by a
    token that is the same person (`--person root`), and can by someone else's."""
    client, _ = api
    same = make_token(project, "roots-token", "approver", person="root")
    promotion = _promotion(project, "root")
    refused = client.post(f"/promotions/{promotion}/approve", json={}, headers=bearer(same))
    assert refused.status_code == 409 and "four-eyes" in refused.json()["detail"]
    listed = project.json("token", "list")
    assert isinstance(listed, list)
    assert {t["name"]: t["person"] for t in listed}["roots-token"] == "root"


def test_docs_are_served_from_this_server(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/openapi.json").json()["info"]["title"] == "envplane"
