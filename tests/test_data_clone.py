"""clone and sync between real environments: equal data by content, the source serving all
along, structural renaming, masking out of an approval-gated environment, refusals."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import Project
from tests.datakit import Prober, digest, seed, urls

pytestmark = pytest.mark.slow

STAGING_RULES = """    data:
      masking:
        public.users.email: hash
        public.users.phone: null
        public.payments.payer_email: hash
        public.payments.card: redact
      subset:
        public.payments: "amount >= 1"
"""


def _config(project: Project, env: str, name: str) -> str:
    return (project.home / "environments" / env / "config" / name).read_text()


def test_clone_with_data_while_the_source_serves(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    src = seed(project, "development")
    before = digest(project, "development", src)

    plan = project.run("clone", "development", "dev-copy", "--with-data", "--dry-run")
    assert plan.returncode == 0 and "Plan: create dev-copy" in plan.stdout
    assert "postgres:" in plan.stdout  # the data it would copy
    assert project.json("list") and not (project.home / "environments" / "dev-copy").exists()

    with Prober(src) as prober:
        done = project.run("clone", "development", "dev-copy", "--with-data")
    assert done.returncode == 0, done.stderr + done.stdout
    assert prober.errors == [] and prober.requests > 3
    # Unmasked, the copy is made while dev-copy is created and its data resources start from
    # it: one operation, the backend started once (on the copied data), no staged copy left.
    ops = project.json("history", "dev-copy")
    assert isinstance(ops, list) and [o["kind"] for o in ops] == ["create"]
    supervisord_log = project.home / "environments" / "dev-copy" / "log" / "supervisord.log"
    assert supervisord_log.read_text().count("spawned: 'svc-backend-0'") == 1
    assert not list(project.home.glob("environments/.dev-copy.*"))

    dst = urls(project, "dev-copy")
    assert digest(project, "dev-copy", dst) == before
    assert digest(project, "development", src) == before  # the source is unchanged
    assert src.postgres != dst.postgres and src.redis != dst.redis  # own ports and passwords
    assert dst.postgres.endswith("/sunday_dev_copy")
    # Renamed structurally: the name is DST's, a value that merely contains SRC's name stays.
    assert _config(project, "dev-copy", "app-config/DEPLOYMENT_ENVIRONMENT") == "dev-copy"
    assert _config(project, "dev-copy", "app-config/NODE_ENV") == "development"
    assert '"keyPrefix": "sunday:dev-copy:"' in _config(
        project, "dev-copy", "backend-config/redis.json"
    )

    info = project.json("info", "dev-copy")
    assert isinstance(info, dict)
    assert info["status"] == "ready" and info["services"]["backend"]["healthy"] is True
    assert info["region"] == "us-east-1"
    assert "0 to create, 0 to update" in project.run("plan", "dev-copy").stdout
    assert project.run("update", "dev-copy").returncode == 0

    again = project.run("clone", "development", "dev-copy")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert project.run("destroy", "dev-copy", "--force").returncode == 0
    assert digest(project, "development", src) == before


def test_masked_clone_out_of_an_approval_environment(project: Project) -> None:
    project.make_staging_an_approval_environment()
    assert project.run("create", "staging").returncode == 0
    stg = seed(project, "staging", rows=3000)
    with psycopg.connect(stg.postgres) as conn:
        emails = {r[0] for r in conn.execute("SELECT email FROM users")}
        phones = {r[0] for r in conn.execute("SELECT phone FROM users")}
        cards = {r[0] for r in conn.execute("SELECT card FROM payments")}
        users = conn.execute("SELECT count(*) FROM users").fetchone()
        kept = conn.execute("SELECT count(*) FROM payments WHERE amount >= 1").fetchone()
        joined = conn.execute(
            "SELECT count(*) FROM payments p JOIN users u ON u.id = p.user_id "
            "AND u.email = p.payer_email WHERE amount >= 1"
        ).fetchone()

    refused = project.run("clone", "staging", "stg-copy", "--with-data")
    assert refused.returncode == 3 and "masking" in refused.stderr
    assert project.run("info", "stg-copy").returncode == 2  # nothing was created

    project.edit_matrix(
        "    services:\n      backend:\n        replicas: 2\n",
        "    services:\n      backend:\n        replicas: 2\n" + STAGING_RULES,
    )
    plan = project.run("clone", "staging", "stg-copy", "--with-data", "--dry-run")
    assert plan.returncode == 0 and "mask public.users.email: hash" in plan.stdout
    done = project.run("clone", "staging", "stg-copy", "--with-data")
    assert done.returncode == 0, done.stderr + done.stdout

    copy = urls(project, "stg-copy")
    with psycopg.connect(copy.postgres) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == users
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == kept
        leaked = conn.execute(
            "SELECT count(*) FROM users WHERE email = ANY(%s) OR phone IS NOT NULL", [list(emails)]
        ).fetchone()
        assert leaked == (0,)
        assert conn.execute(
            "SELECT count(*) FROM payments WHERE card = ANY(%s) OR payer_email = ANY(%s)",
            [list(cards), list(emails)],
        ).fetchone() == (0,)
        assert phones and conn.execute(
            "SELECT count(*) FROM users WHERE phone = ANY(%s)", [list(phones)]
        ).fetchone() == (0,)
        # Deterministic hashing: the join on the masked e-mail columns still holds.
        assert (
            conn.execute(
                "SELECT count(*) FROM payments p JOIN users u ON u.id = p.user_id "
                "AND u.email = p.payer_email"
            ).fetchone()
            == joined
        )

    def source_keeps_its_real_data() -> None:
        with psycopg.connect(stg.postgres) as conn:
            query = "SELECT count(*) FROM users WHERE email = ANY(%s)"
            assert conn.execute(query, [list(emails)]).fetchone() == users

    source_keeps_its_real_data()
    # Syncing data INTO the approval-gated environment needs --force.
    blocked = project.run("sync", "stg-copy", "staging", "--type", "data")
    assert blocked.returncode == 3 and "--force" in blocked.stderr
    source_keeps_its_real_data()

    # A backup of staging restored into the copy is masked the same way: same input, same hash.
    with psycopg.connect(copy.postgres) as conn:
        hashed = conn.execute(
            "SELECT md5(string_agg(email, ',' ORDER BY id)) FROM users"
        ).fetchone()
    made = project.run("backup", "staging", "--type", "data", "-o", "json")
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["backup_id"]
    restored = project.run("restore", "stg-copy", backup_id, "--from-env", "staging", "--force")
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(copy.postgres) as conn:
        assert (
            conn.execute("SELECT md5(string_agg(email, ',' ORDER BY id)) FROM users").fetchone()
            == hashed
        )
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email = ANY(%s) OR phone IS NOT NULL", [list(emails)]
        ).fetchone() == (0,)
    # Staged and masked before it replaces the copy's data (the clone's own was masked the
    # same way, while stg-copy was created from it): a data sync out of staging.
    with psycopg.connect(stg.postgres) as conn:
        conn.execute(
            "INSERT INTO users (id, email, phone) VALUES (900001, 'late@example.org', '+1-555-9')"
        )
    synced = project.run("sync", "staging", "stg-copy", "--type", "data")
    assert synced.returncode == 0, synced.stderr + synced.stdout
    assert "vacuum full public.users" in synced.stderr  # the masking ran
    with psycopg.connect(copy.postgres) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (users[0] + 1,)
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email = ANY(%s) OR phone IS NOT NULL",
            [[*emails, "late@example.org"]],
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == kept
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert names == {"postgres", "template0", "template1", copy.postgres.rsplit("/", 1)[1]}
    assert not list(project.home.glob("environments/.stg-copy.*"))


def test_sync_config_and_data(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    assert project.run("clone", "development", "dev-two").returncode == 0
    source = digest(project, "development", seed(project, "development", rows=3000))
    two = urls(project, "dev-two")

    diff = project.run("sync", "development", "dev-two", "--type", "data", "--dry-run")
    assert diff.returncode == 0 and "replaced" in diff.stdout
    assert digest(project, "dev-two", two)["postgres"] != source["postgres"]
    done = project.run("sync", "development", "dev-two", "--type", "data")
    assert done.returncode == 0, done.stderr
    assert digest(project, "dev-two", two) == source
    assert not list(project.home.glob("environments/.dev-two.*"))  # the staged copies were used

    # config: dev-two renders staging's template for itself; staging must exist as a source.
    absent = project.run("sync", "staging", "dev-two", "--type", "config")
    assert absent.returncode == 2 and "has not been created" in absent.stderr
    assert project.run("create", "staging").returncode == 0
    dry = project.run("sync", "staging", "dev-two", "--type", "config", "--dry-run")
    assert dry.returncode == 0 and "LOG_LEVEL" in dry.stdout and "info" in dry.stdout
    assert _config(project, "dev-two", "app-config/LOG_LEVEL") == "debug"
    synced = project.run("sync", "staging", "dev-two", "--type", "config")
    assert synced.returncode == 0, synced.stderr
    assert _config(project, "dev-two", "app-config/LOG_LEVEL") == "info"
    assert _config(project, "dev-two", "app-config/DEPLOYMENT_ENVIRONMENT") == "dev-two"
    info = project.json("info", "dev-two")
    assert isinstance(info, dict) and info["services"]["backend"]["healthy"] is True
    assert "No changes" in project.run("update", "dev-two").stdout  # the choice is kept
    assert digest(project, "dev-two", two) == source  # config sync leaves data alone


def test_bad_arguments(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    cases = [
        (("clone", "development", "Bad_Name"), 2, "invalid"),
        (("clone", "development", "staging"), 2, "defined in the matrix"),
        (("clone", "development", "development"), 2, "defined in the matrix"),
        (("clone", "nosuchenv", "x-copy"), 2, "nosuchenv"),
        (("clone", "staging", "x-copy"), 2, "has not been created"),
        (("sync", "development", "staging", "--type", "everything"), 2, "everything"),
        (("sync", "development", "nosuchenv", "--type", "data"), 2, "nosuchenv"),
        (("sync", "development", "development", "--type", "config"), 2, "same environment"),
    ]
    for args, code, text in cases:
        result = project.run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert text in result.stderr, (args, result.stderr)
    listed = project.json("list")
    assert isinstance(listed, list) and {e["name"] for e in listed} == {
        "development",
        "staging",
        "production",
    }
    assert [e["name"] for e in listed if e["status"] == "ready"] == ["development"]


def test_clone_killed_while_creating_is_resumed_with_its_data(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    src = seed(project, "development", rows=2000)
    before = digest(project, "development", src)
    killed = project.run(
        "clone", "development", "dev-copy", "--with-data", ENVPLANE_FAULT_KILL_AFTER_STEP="3"
    )
    assert killed.returncode == -9
    ops = project.json("history", "dev-copy")
    assert isinstance(ops, list) and ops[0]["kind"] == "create" and ops[0]["status"] == "running"
    resumed = project.run("resume", ops[0]["id"])
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert digest(project, "dev-copy") == before
    assert not list(project.home.glob("environments/.dev-copy.*"))
    info = project.json("info", "dev-copy")
    assert isinstance(info, dict) and info["status"] == "ready"
    assert project.run("destroy", "dev-copy", "--force").returncode == 0


def test_masked_clone_killed_while_creating_is_resumed_masked(project: Project) -> None:
    project.make_staging_an_approval_environment()
    project.edit_matrix(
        "    services:\n      backend:\n        replicas: 2\n",
        "    services:\n      backend:\n        replicas: 2\n" + STAGING_RULES,
    )
    assert project.run("create", "staging").returncode == 0
    stg = seed(project, "staging", rows=1000)
    with psycopg.connect(stg.postgres) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM users")]
    # Killed part-way through its create (its data resources made from the early copies).
    killed = project.run(
        "clone", "staging", "stg-copy", "--with-data", ENVPLANE_FAULT_KILL_AFTER_STEP="3"
    )
    assert killed.returncode == -9
    ops = project.json("history", "stg-copy")
    assert isinstance(ops, list) and ops[0]["kind"] == "create" and ops[0]["status"] == "running"
    resumed = project.run("resume", ops[0]["id"])
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    with psycopg.connect(urls(project, "stg-copy").postgres) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (len(emails),)
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email = ANY(%s) OR phone IS NOT NULL", [emails]
        ).fetchone() == (0,)
    assert not list(project.home.glob("environments/.stg-copy.*"))
    info = project.json("info", "stg-copy")
    assert isinstance(info, dict) and info["status"] == "ready"
    assert project.run("destroy", "stg-copy", "--force").returncode == 0
