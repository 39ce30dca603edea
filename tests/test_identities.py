"""Identities and the audit trail's request columns on SQLite and on a real PostgreSQL
server: tokens (only a hash stored), users (argon2id), revocation, expiry; the CLI's
`token`, `user` and `audit` commands and their bad inputs; the API answering from a
PostgreSQL store."""

from __future__ import annotations

import base64
import json
import os

import pytest
from fastapi.testclient import TestClient

from envplane.api import create_app
from envplane.errors import BadInput
from envplane.service import identities as ids
from envplane.settings import Settings
from envplane.state.store import StateStore
from tests.conftest import Project
from tests.pgserver import fresh_database_fixture, postgres_url_fixture  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, project: Project) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{project.home / 'state.db'}"
    url: str = request.getfixturevalue("fresh_database")
    return url


def test_tokens_users_and_audit_rows_in_the_store(project: Project, state_url: str) -> None:
    project.home.mkdir(parents=True, exist_ok=True)
    with StateStore.open(state_url, project.home, actor="ops") as store:
        record, token = ids.create_token(store, "ci", "deployer", envs="pr-*, development")
        assert record.envs == ("pr-*", "development") and record.created_by == "ops"
        assert record.secret_hash == ids.token_hash(token) and token not in record.secret_hash
        who = ids.sign_in_token(store, token)
        assert (who.name, who.role, who.person) == ("ci", "deployer", "api:ci")
        assert store.get_identity("token", "ci").last_used_at is not None  # type: ignore[union-attr]
        with pytest.raises(BadInput, match="exists already"):
            ids.create_token(store, "ci", "viewer")
        ids.add_user(store, "alice", "approver", "correct horse battery", person="alice")
        hashed = store.get_identity("user", "alice")
        assert hashed is not None and hashed.secret_hash.startswith("$argon2id$")
        assert ids.sign_in_user(store, "alice", "correct horse battery").person == "alice"
        with pytest.raises(ids.NotSignedIn):
            ids.sign_in_user(store, "alice", "wrong horse battery")
        with pytest.raises(ids.NotSignedIn):
            ids.sign_in_user(store, "nobody-here", "correct horse battery")
        ids.revoke(store, "token", "ci")
        with pytest.raises(ids.NotSignedIn):
            ids.sign_in_token(store, token)
        store.audit_request(
            actor="api:ci", env="pr-one", action="create", detail="job-1 op-1",
            source="api 127.0.0.1 (token ci)", outcome="succeeded",
        )  # fmt: skip
        rows = store.audit_entries(limit=10)
        assert (rows[0].source, rows[0].outcome, rows[0].env) == (
            "api 127.0.0.1 (token ci)", "succeeded", "pr-one"
        )  # fmt: skip
        assert rows[1].action == "token revoked" and rows[1].source is None  # a CLI row
        assert [r.env for r in store.audit_entries("pr-one")] == ["pr-one"]


def test_the_api_answers_from_a_postgresql_store(project: Project, fresh_database: str) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    os.environ["ENVPLANE_SECRET_KEY"] = key
    try:
        project.home.mkdir(parents=True, exist_ok=True)
        with StateStore.open(fresh_database, project.home) as store:
            store.save_environment("pr-recorded", target="local", status="ready")
            _r, token = ids.create_token(store, "reader", "viewer")
        settings = Settings(
            matrix_path=project.matrix, home=project.home, database_url=fresh_database
        )
        with TestClient(create_app(settings=settings)) as client:
            listed = client.get("/environments", headers={"Authorization": f"Bearer {token}"})
            assert listed.status_code == 200, listed.text
            names = {e["name"]: e for e in listed.json()}
            assert (
                names["pr-recorded"]["status"] == "ready" and not names["pr-recorded"]["in_matrix"]
            )
            assert names["development"]["status"] == "not created"
            refused = client.post(
                "/environments", json={"name": "pr-x"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 403
        with StateStore.open(fresh_database, project.home) as store:
            denied = [e for e in store.audit_entries() if e.outcome == "denied"]
        assert denied and denied[0].actor == "api:reader"
    finally:
        os.environ.pop("ENVPLANE_SECRET_KEY", None)


def test_cli_token_user_audit_and_bad_inputs(project: Project) -> None:
    made = project.run("token", "create", "--name", "ci", "--role", "deployer", "--envs", "pr-*",
                       "--expires", "30d")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ept_") and len(token) > 40
    assert "only its hash is stored" in made.stderr
    listed = project.run("token", "list", "-o", "json")
    doc = json.loads(listed.stdout)
    assert doc[0]["name"] == "ci" and doc[0]["envs"] == ["pr-*"] and doc[0]["expires_at"]
    assert token not in listed.stdout and "hash" not in listed.stdout
    table = project.run("token", "list")
    assert "ci" in table.stdout and "pr-*" in table.stdout and token not in table.stdout

    for args, message in (
        (["--name", "Bad Name", "--role", "viewer"], "invalid token name"),
        (["--name", "x1", "--role", "viewer", "--envs", "PROD;drop"], "invalid environment scope"),
        (["--name", "x2", "--role", "viewer", "--expires", "soon"], "invalid --expires"),
        (["--name", "ci", "--role", "viewer"], "exists already"),
    ):
        bad = project.run("token", "create", *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    wrong_role = project.run("token", "create", "--name", "x3", "--role", "root")
    assert wrong_role.returncode == 2 and "root" in wrong_role.stderr

    as_argument = project.run("user", "add", "bob", "--role", "viewer", "hunter2hunter2")
    assert as_argument.returncode == 2 and "never an argument" in as_argument.stderr
    assert "hunter2hunter2" not in as_argument.stderr
    short = project.run("user", "add", "bob", "--role", "viewer", input="short\n")
    assert short.returncode == 2 and "12 characters" in short.stderr
    added = project.run("user", "add", "bob", "--role", "viewer", input="a good long passphrase\n")
    assert added.returncode == 0, added.stderr
    assert project.run("user", "remove", "bob").returncode == 0
    assert project.run("token", "revoke", "nope").returncode == 2
    assert project.run("token", "revoke", "ci").returncode == 0

    audit = json.loads(project.run("audit", "-o", "json").stdout)
    actions = [r["action"] for r in audit]
    assert actions[:4] == ["token revoked", "user revoked", "user added", "token created"]
    assert all(token not in json.dumps(r) for r in audit)
    assert project.run("audit", "--env", "NOT VALID").returncode == 2


def test_serve_checks_its_arguments_and_warns_without_tls(project: Project) -> None:
    from envplane.cli.commands_serve import _exposed

    assert not _exposed("127.0.0.1") and not _exposed("::1") and not _exposed("localhost")
    assert _exposed("0.0.0.0") and _exposed("192.0.2.1") and _exposed("example.org")
    half = project.run("serve", "--ssl-certfile", str(project.matrix))
    assert half.returncode == 2 and "go together" in half.stderr
    # Told 0.0.0.0 without TLS: the warning comes first; the unusable store then stops it
    # before anything is bound.
    warned = project.run("serve", "--host", "0.0.0.0", ENVPLANE_DATABASE_URL="sqlite:///")
    assert "without TLS" in warned.stderr and warned.returncode == 2, warned.stderr
    assert "does not name a file" in warned.stderr
