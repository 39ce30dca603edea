"""The dashboard's pages and forms in-process (the app `envplane serve` runs, on a private copy
of the Sunday example with nothing created): every page renders for a signed-in identity, a
page without a session goes to sign-in, a form without the session's CSRF token is refused
(403, audited, nothing done), values are escaped, sign-in redirects only within the dashboard.
The real browser against real environments is tests/test_dashboard_browser.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from envplane.api import create_app
from envplane.api.dashboard import mount
from envplane.service.identities import create_token
from envplane.settings import Settings
from envplane.state.store import StateStore
from tests.conftest import Project


def settings_of(project: Project) -> Settings:
    home = project.home
    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        matrix_path=project.matrix, home=home, database_url=f"sqlite:///{home / 'state.db'}"
    )


@pytest.fixture
def app(project: Project) -> Iterator[tuple[TestClient, dict[str, str], Project]]:
    settings = settings_of(project)
    with StateStore.open(settings.database_url, settings.home) as store:
        tokens = {role: create_token(store, role, role)[1] for role in ("viewer", "admin")}
    with TestClient(create_app(settings=settings, **mount())) as client:
        yield client, tokens, project


def sign_in(client: TestClient, token: str, next_path: str = "/ui/") -> str:
    answer = client.post(
        "/ui/sign-in", data={"token": token, "next": next_path}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return str(answer.headers["location"])


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_every_page_renders_for_a_signed_in_identity(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, _ = app
    assert sign_in(client, tokens["admin"]) == "/ui/"
    for path in ("/ui/", "/ui/environments/development", "/ui/promotions", "/ui/previews"):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<main" in page.text and 'name="csrf_token"' in page.text  # the sign-out form
    listed = client.get("/ui/")
    for env in ("development", "staging", "production"):
        assert f'<tr data-env="{env}">' in listed.text
    assert "not created" in listed.text and "/month" in listed.text
    rows = client.get("/ui/rows").json()
    assert {r["name"]: r["status"] for r in rows} == {
        "development": "not created", "staging": "not created", "production": "not created",
    }  # fmt: skip
    assert [r["name"] for r in rows] == ["development", "staging", "production"]  # pipeline order
    assert client.get("/ui/static/dashboard.js").status_code == 200
    assert client.get("/ui/static/dashboard.css").status_code == 200


def test_without_a_session_every_page_goes_to_sign_in(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, _, _ = app
    answer = client.get("/ui/promotions", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=/ui/promotions"
    assert client.get("/ui/rows").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    form = client.post("/ui/environments/development/backup", data={"backup_type": "full"},
                       follow_redirects=False)  # fmt: skip
    assert form.status_code == 303 and form.headers["location"].startswith("/ui/sign-in")


def test_a_bad_sign_in_says_why_and_next_stays_within_the_dashboard(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, _ = app
    refused = client.post("/ui/sign-in", data={"token": "ept_wrong"}, follow_redirects=False)
    assert refused.status_code == 401
    assert "unknown or revoked credentials" in refused.text
    assert "set-cookie" not in refused.headers
    for elsewhere in ("//evil.example/", "https://evil.example/", "/ui/\\\\evil", "/docs"):
        assert sign_in(client, tokens["viewer"], elsewhere) == "/ui/"
    assert sign_in(client, tokens["viewer"], "/ui/previews") == "/ui/previews"


def test_a_form_without_the_csrf_token_is_refused_and_audited(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, project = app
    sign_in(client, tokens["admin"])
    for form in ({"backup_type": "full"}, {"backup_type": "full", "csrf_token": "forged"}):
        answer = client.post("/ui/environments/development/backup", data=form)
        assert answer.status_code == 403, answer.text
        assert "CSRF token" in answer.text and "Traceback" not in answer.text
    # The API's routes hold the same rule for the same cookie (the header, not a field).
    api = client.post("/environments/development/backups", json={"backup_type": "full"})
    assert api.status_code == 403
    audit = project.json("audit")
    assert isinstance(audit, list)
    denied = [a for a in audit if a["outcome"] == "denied" and "CSRF" in a["detail"]]
    assert len(denied) == 3, audit
    # With its token the form reaches the service layer, which says what is wrong.
    token = csrf_of(client.get("/ui/environments/development").text)
    answer = client.post("/ui/environments/development/backup",
                         data={"backup_type": "full", "csrf_token": token})  # fmt: skip
    assert answer.status_code in (400, 409), answer.text
    assert "development" in answer.text and "CSRF" not in answer.text
    bad = client.post("/ui/environments/development/backup",
                      data={"backup_type": "everything", "csrf_token": token})  # fmt: skip
    assert bad.status_code == 400 and "invalid backup type" in bad.text


def test_a_viewer_sees_no_form_that_changes_and_cannot_post_one(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, _ = app
    sign_in(client, tokens["viewer"])
    promotions = client.get("/ui/promotions").text
    assert "Promote (or request approval)" not in promotions
    token = csrf_of(promotions)
    answer = client.post("/ui/promotions", data={"release": "rel-x", "environment": "staging",
                                                 "csrf_token": token})  # fmt: skip
    assert answer.status_code == 403 and "viewer" in answer.text


def test_values_are_escaped_and_an_unknown_environment_is_a_404(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, _ = app
    sign_in(client, tokens["viewer"])
    page = client.get("/ui/", params={"q": '<script>alert("x")</script>'})
    assert '<script>alert("x")</script>' not in page.text
    assert "&lt;script&gt;" in page.text
    gone = client.get("/ui/environments/stagign")
    assert gone.status_code == 404 and "staging" in gone.text
    bad = client.get("/ui/environments/Bad_Name")
    assert bad.status_code == 400 and "Traceback" not in bad.text


def test_a_restore_asks_again_before_it_replaces_anything(
    app: tuple[TestClient, dict[str, str], Project],
) -> None:
    client, tokens, _ = app
    sign_in(client, tokens["admin"])
    token = csrf_of(client.get("/ui/environments/development").text)
    form = {"backup_id": "backup-development-20261201-000000", "csrf_token": token}
    asked = client.post("/ui/environments/development/restore", data=form)
    assert asked.status_code == 200
    assert "replaces the data and configuration of development" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    confirmed = client.post("/ui/environments/development/restore", data={**form, "confirm": "yes"})
    assert confirmed.status_code in (400, 404, 409), confirmed.text  # no such backup: refused
    assert "backup-development-20261201-000000" in confirmed.text


def test_past_the_live_limit_rows_show_what_the_store_recorded(project: Project) -> None:
    from envplane.api.dashboard.gather import LIVE_LIMIT

    settings = settings_of(project)
    with StateStore.open(settings.database_url, settings.home) as store:
        for i in range(LIVE_LIMIT + 5):
            store.save_environment(f"old-{i:02d}", target="local", status="ready", ports={})
        token = create_token(store, "viewer", "viewer")[1]
    try:
        with TestClient(create_app(settings=settings, **mount())) as client:
            sign_in(client, token)
            rows = client.get("/ui/rows").json()
    finally:  # records only, nothing runs: the fixture's teardown need not destroy them
        with StateStore.open(settings.database_url, settings.home) as store:
            for i in range(LIVE_LIMIT + 5):
                store.save_environment(f"old-{i:02d}", status="destroyed")
    assert len(rows) == 3 + LIVE_LIMIT + 5
    recorded = [r for r in rows if r["note"] == "live status: open the environment"]
    assert [r["name"] for r in recorded] == [
        f"old-{i:02d}" for i in range(LIVE_LIMIT, LIVE_LIMIT + 5)
    ]
    assert all(r["status"] == "ready" and r["desired"] is None for r in recorded)
