"""Secrets in a service's env (issue 9, item 11): a value under a key that names a secret is
refused by `check`, located; `KEY: {secret: NAME}` reads the environment's secret NAME
(generated once, or set with `envplane secret set ENV NAME` from stdin), which reaches the
running service and nothing else: no plan, journal, output or byte of state.db holds it; a new
value reaches the service at the next `update`; and `validate`'s "state store holds no clear
secret" searches what the store keeps, naming where it finds one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix import load_matrix_text
from envplane.matrix.models import SecretRef, secret_looking
from envplane.render.local import desired_local, port_keys
from envplane.state.documents import read_stored_documents
from envplane.state.store import StateStore
from tests.conftest import Project, open_tmpdir
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)
from tests.support import teardown_project

ENV = "dev-one"
STORE_CHECK = "state store holds no clear secret"

APP = """\
import os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if os.environ.get("API_KEY") else b"no key"
        self.send_response(200 if os.environ.get("API_KEY") else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
server.serve_forever(poll_interval=0.1)
"""

MATRIX = """\
project: shop
services:
  api:
    command: ["{python}", "app/secret_echo.py"]
    env:
      MSG: hello
      API_KEY: {secret: api-key}
environments:
  dev-one:
    regions:
      primary: us-east-1
    storage:
      type: s3
      versioning: enabled
      encryption: AES256
"""


@pytest.fixture
def small() -> Iterator[Project]:
    """A project with one quick environment: object storage and a service reading API_KEY."""
    base = open_tmpdir("envplane-secrets-")
    root = base / "shop"
    (root / "config").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "app" / "secret_echo.py").write_text(APP, encoding="utf-8")
    (root / "config" / "environment-matrix.yaml").write_text(MATRIX, encoding="utf-8")
    for path in (root, root / "config", root / "app"):
        path.chmod(0o755)
    (root / "app" / "secret_echo.py").chmod(0o644)
    proj = Project(root=root, home=base / "home")
    try:
        yield proj
    finally:
        teardown_project(proj)
        shutil.rmtree(base, ignore_errors=True)


def ok(project: Project, *args: str, input: str | None = None) -> str:
    result = project.run(*args, input=input)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout + result.stderr


def stored_value(project: Project, name: str = "api-key") -> str:
    with StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home) as store:
        return store.get_secret(ENV, name)


def service_process(project: Project) -> tuple[int, dict[str, str]]:
    """The pid and environment of the running service (the launcher exec'd it)."""
    marker = f"ENVPLANE_ENV_DIR={project.home / 'environments' / ENV}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"secret_echo.py" in cmdline and marker in environ:
            pairs = (item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
            return int(proc.name), {k.decode(): v.decode() for k, v in pairs}
    raise AssertionError("the service is not running")


def state_bytes(project: Project) -> bytes:
    db = project.home / "state.db"
    return b"".join(p.read_bytes() for p in (db, db.with_name("state.db-wal")) if p.exists())


def outputs(project: Project) -> str:
    """Everything the read commands print about the environment."""
    runs = [
        ("plan", ENV),
        ("plan", ENV, "-o", "json"),
        ("history", ENV, "-o", "json"),
        ("history", ENV),
        ("info", ENV, "-o", "json"),
        ("info", ENV),
        ("list", "-o", "json"),
        ("secret", "list", ENV, "-o", "json"),
    ]
    return "".join(ok(project, *args) for args in runs)


def assert_nowhere(project: Project, value: str, printed: str) -> None:
    assert value not in printed
    assert value.encode() not in state_bytes(project)
    for res in json.loads(ok(project, "plan", ENV, "-o", "json")).get("steps", []):
        assert value not in json.dumps(res)


# --- the matrix and check -------------------------------------------------------------------


SECRET_KEYS = "API_KEY stripe_api_key apiKey DATABASE_PASSWORD JWT_SECRET GITHUB_TOKEN"
SECRET_KEYS += " PRIVATE_KEY AWS_SECRET_ACCESS_KEY SECRET_KEY_BASE"
OTHER_KEYS = "MSG TOKEN_TTL PASSWORD_MIN_LENGTH AWS_ACCESS_KEY_ID PUBLIC_KEY SSH_PRIVATE_KEY_PATH"


def test_secret_looking_keys() -> None:
    for key in SECRET_KEYS.split():
        assert secret_looking(key), key
    for key in [*OTHER_KEYS.split(), "PWD"]:
        assert not secret_looking(key), key


def test_check_refuses_a_plain_value_under_a_secret_key_located(small: Project) -> None:
    small.matrix.write_text(MATRIX.replace("{secret: api-key}", '"abc-not-shown"'))
    result = small.run("check")
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = MATRIX.splitlines().index("      API_KEY: {secret: api-key}") + 1
    assert f"environment-matrix.yaml:{line}: " in result.stderr
    assert "services.api.env.API_KEY" in result.stderr
    assert "names a secret" in result.stderr
    assert "{secret: NAME}" in result.stderr and "envplane secret set" in result.stderr
    assert "abc-not-shown" not in result.stdout + result.stderr
    as_json = small.run("check", "-o", "json")
    assert as_json.returncode == 2 and as_json.stdout == ""
    error = json.loads(as_json.stderr)
    assert "services.api.env.API_KEY" in error["error"] and "{secret: NAME}" in error["hint"]
    # An empty value is no secret; a key that does not name one is left alone.
    small.matrix.write_text(MATRIX.replace("{secret: api-key}", '""\n      TOKEN_TTL: "60"'))
    assert small.run("check").returncode == 0


def test_check_accepts_a_secret_reference(small: Project) -> None:
    assert small.run("check").returncode == 0


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        ("{secret: Api}", "env.API_KEY.secret", "invalid secret name 'Api'"),
        ("{secret: api-}", "env.API_KEY.secret", "may not begin or end with '-'"),
        ("{secrt: api}", "env.API_KEY.secrt", "did you mean 'secret'"),
        ("{secret: a, value: b}", "env.API_KEY.value", "unknown key 'value'"),
        ("[a]", "env.API_KEY", "input should be text or {secret: NAME}, got a list"),
    ],
)
def test_a_bad_secret_reference_is_located(value: str, key: str, message: str) -> None:
    text = MATRIX.replace("{secret: api-key}", value)
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(text, "m.yaml")
    line = MATRIX.splitlines().index("      API_KEY: {secret: api-key}") + 1
    assert str(caught.value).startswith(f"m.yaml:{line}: services.api.{key}: "), caught.value
    assert message in str(caught.value)


def test_rendering_puts_a_reference_in_the_spec_and_the_name_in_the_secrets(
    tmp_path: Path,
) -> None:
    text = MATRIX + "    services:\n      api:\n        env:\n          OTHER: {secret: other}\n"
    matrix = load_matrix_text(text, str(tmp_path / "m.yaml"))
    assert matrix.services_for(ENV)["api"].env["API_KEY"] == SecretRef(secret="api-key")
    ports = {key: 20000 + n for n, key in enumerate(port_keys(matrix, ENV))}
    desired = desired_local(matrix, ENV, env_dir=tmp_path / "env", ports=ports)
    spec = next(r.spec for r in desired.resources if r.key == "service/api")
    assert spec["env"]["MSG"] == "hello" and "API_KEY" not in spec["env"]
    assert spec["secret_env"] == {"API_KEY": "api-key", "OTHER": "other"}
    assert {"api-key", "other"} <= set(desired.secrets)


# --- what the store keeps, as validation reads it -------------------------------------------


def test_stored_documents_name_every_document_of_the_environment(
    store: StateStore, store_url: str
) -> None:
    """On SQLite and on PostgreSQL: specs, the journal, saved plans and the audit trail, each
    named; another environment's documents are not among them, nor the vault's ciphertext."""
    store.save_environment(ENV, target="local", status="ready", ports={"proxy": 1})
    store.put_secret(ENV, "api-key", "never-in-a-document-0123")
    store.record_resource(ENV, "service/api", "service", "d1", {"env": {"A": "in-spec"}})
    op = store.start_operation(ENV, "create", {"steps": ["in-plan"]})
    store.start_step(op.id, 0, "service/api", "create")
    store.finish_step(op.id, 0, "failed", "in-step-detail")
    store.finish_operation(op.id, "failed", "in-error")
    saved = store.save_plan(ENV, "create", request={}, plan={"x": "in-saved"}, fingerprint="f")
    store.audit(ENV, "note", "in-audit")
    store.audit(None, "global", "in-global-audit")
    store.save_environment("dev-two", target="local", status="ready")
    store.record_resource("dev-two", "service/api", "service", "d2", {"env": {"A": "other"}})
    docs = {d.where: d.text for d in read_stored_documents(store_url, ENV)}
    assert docs == {d.where: d.text for d in store.stored_documents(ENV)}
    expected = {
        "resource service/api spec": "in-spec",
        f"operation {op.id} plan": "in-plan",
        f"operation {op.id} step 0 detail": "in-step-detail",
        f"operation {op.id} error": "in-error",
        f"saved plan {saved.id}": "in-saved",
    }
    for where, text in expected.items():
        assert text in docs[where], (where, docs)
    audit = [t for w, t in docs.items() if w.startswith("audit #")]
    assert "in-audit" in audit and "in-global-audit" in audit
    assert not any("other" in t or "never-in-a-document" in t for t in docs.values())


# --- the local target, end to end -----------------------------------------------------------


def test_a_generated_secret_reaches_the_service_and_is_never_stored_or_shown(
    small: Project,
) -> None:
    printed = ok(small, "create", ENV)
    value = stored_value(small)
    assert len(value) >= 24
    _pid, environ = service_process(small)
    assert environ["API_KEY"] == value and environ["MSG"] == "hello"
    printed += ok(small, "update", ENV) + outputs(small)
    assert_nowhere(small, value, printed)
    assert "api-key" in printed  # named, as a reference
    listed = json.loads(ok(small, "secret", "list", ENV, "-o", "json"))
    assert listed == [
        {"name": "api-key", "stored": True, "used_by": ["api.API_KEY"], "managed": False}
    ]
    report = json.loads(small.run("validate", ENV, "--level", "comprehensive", "-o", "json").stdout)
    check = next(c for c in report["checks"] if c["name"] == STORE_CHECK)
    assert check["status"] == "pass", check
    assert value not in json.dumps(report)


def test_secret_set_before_create_and_after_reaches_the_service_at_update(
    small: Project,
) -> None:
    first, second = "first-value-set-by-me", "second 'value' \"quoted\" \\ ü"
    said = ok(small, "secret", "set", ENV, "api-key", input=first + "\n")
    assert "envplane create dev-one" in said and first not in said
    printed = ok(small, "create", ENV)
    pid, environ = service_process(small)
    assert environ["API_KEY"] == first  # the trailing newline of `echo` is dropped
    said = ok(small, "secret", "set", ENV, "api-key", input=second)
    assert "envplane update dev-one" in said and "api" in said
    plan = ok(small, "plan", ENV)
    assert "secret api-key changed" in plan, plan
    printed += said + plan + ok(small, "update", ENV)
    new_pid, environ = service_process(small)
    assert new_pid != pid and environ["API_KEY"] == second
    again = json.loads(ok(small, "plan", ENV, "-o", "json"))
    assert {s["action"] for s in again["steps"]} == {"noop"}, again
    printed += outputs(small)
    for value in (first, second):
        assert_nowhere(small, value, printed)
        assert json.dumps(value)[1:-1].encode() not in state_bytes(small)
    with StateStore.open(f"sqlite:///{small.home / 'state.db'}", small.home) as store:
        audit = [line.detail for line in store.audit_log(ENV)]
    assert sum("secret api-key set" in d for d in audit) == 2


def test_secret_set_refuses_what_it_cannot_set(small: Project) -> None:
    managed = small.run("secret", "set", ENV, "postgres-password", input="x" * 20)
    assert managed.returncode == 2 and "envplane's own secret" in managed.stderr
    unknown = small.run("secret", "set", ENV, "api-kye", input="x" * 20)
    assert unknown.returncode == 2 and "reads a secret 'api-kye'" in unknown.stderr
    assert "api-key" in unknown.stderr  # the names it does read
    empty = small.run("secret", "set", ENV, "api-key", input="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    from_argv = small.run("secret", "set", ENV, "api-key", "the-value-0123")
    assert from_argv.returncode == 2 and "never an argument" in from_argv.stderr
    assert "the-value-0123" not in from_argv.stdout + from_argv.stderr
    nowhere = small.run("secret", "set", "nope-env", "api-key", input="x" * 20)
    assert nowhere.returncode == 2
    assert not (small.home / "state.db").exists() or b"x" * 20 not in state_bytes(small)


def test_validation_finds_a_value_planted_in_the_store_and_names_where(small: Project) -> None:
    ok(small, "secret", "set", ENV, "api-key", input="planted-value-0123456789")
    ok(small, "create", ENV)
    with StateStore.open(f"sqlite:///{small.home / 'state.db'}", small.home) as store:
        store.audit(ENV, "note", "pasted by mistake: planted-value-0123456789 (sorry)")
        planted = store.audit_log(ENV, limit=1)[0].id
    result = small.run("validate", ENV, "--level", "comprehensive", "-o", "json")
    assert result.returncode == 1, result.stderr
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == STORE_CHECK)
    assert check["status"] == "fail", check
    assert f"audit #{planted} (note) holds secret api-key" in check["detail"]
    assert "planted-value" not in result.stdout + result.stderr


def test_validation_names_a_plain_value_under_a_secret_key(small: Project) -> None:
    """The issue's own case: created without `check`, a plain API_KEY in the service spec."""
    small.matrix.write_text(MATRIX.replace("{secret: api-key}", '"plain-value-0123456789"'))
    ok(small, "create", ENV)
    result = small.run("validate", ENV, "--level", "comprehensive", "-o", "json")
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == STORE_CHECK)
    assert check["status"] == "fail", check
    assert "resource service/api spec: env API_KEY names a secret" in check["detail"]
    assert "plain-value" not in result.stdout


# --- the cloud target -----------------------------------------------------------------------


def test_the_cloud_target_refuses_a_secret_reference(project: Project) -> None:
    project.edit_matrix("    env: {}\n", "    env:\n      API_KEY: {secret: api-key}\n")
    for args in (
        ("plan", "development", "--target", "cloud"),
        ("render", "development", "--target", "cloud", "--out", str(project.root / "out")),
    ):
        result = project.run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "services.backend.env.API_KEY" in result.stderr
        assert "{secret: api-key} is not supported on the cloud target yet" in result.stderr
    assert not (project.home / "environments" / "development").exists()
