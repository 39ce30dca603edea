"""Previews: the matrix's `previews:` block, the store's records, and real previews created,
used, extended, capped by quotas, expired and reaped."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from envplane.errors import BadInput, Blocked, MatrixError
from envplane.matrix.loader import load_matrix_text
from envplane.previews.quotas import check_quotas
from envplane.state.base import now
from envplane.state.store import StateStore
from envplane.targets.local.procs import port_accepts
from envplane.workspace import Workspace
from tests.conftest import ENVPLANE, Project
from tests.datakit import digest, seed, urls
from tests.localkit import free_ports, wait_for
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sunday" / "config"
MATRIX = (EXAMPLE / "environment-matrix.yaml").read_text()


def test_the_example_declares_previews() -> None:
    spec = load_matrix_text(MATRIX, "m.yaml").spec.previews
    assert spec is not None
    assert spec.source == "staging" and spec.prefix == "pr-"
    assert spec.ttl == 48 * 3600 and spec.max_ttl == 14 * 86400  # 14d: beyond the house's 7 days
    assert spec.quotas.max_per_creator == 3 and str(spec.quotas.monthly_cost_limit) == "3000"


@pytest.mark.parametrize(
    ("old", "new", "where", "says"),
    [
        ("ttl: 48h", "ttl: 48x", "previews.ttl", "expected a duration like"),
        ("max_ttl: 14d", "max_ttl: 1h", "previews.ttl", "longer than max_ttl"),
        ("prefix: pr-", "prefix: PR/", "previews.prefix", "invalid preview prefix"),
        ("monthly_cost_limit: 3000", "monthly_cost_limit: -3", "monthly_cost_limit", "USD"),
        ("max_per_creator: 3", "max_per_creator: 0", "max_per_creator", "greater than"),
        ("wake_on_request: true", "wake_on_requests: true", "wake_on_requests", "unknown key"),
        ("ttl: 48h", "ttl: 400d", "previews.ttl", "between 1s and 365d"),
    ],
)
def test_a_bad_previews_block_is_located(old: str, new: str, where: str, says: str) -> None:
    assert old in MATRIX
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(MATRIX.replace(old, new), "m.yaml")
    text = str(caught.value)
    assert where in text and says in text
    line = next(i for i, t in enumerate(MATRIX.replace(old, new).splitlines(), 1) if new in t)
    assert f"m.yaml:{line}:" in text or "longer than max_ttl" in text


# The store's records (SQLite and PostgreSQL) ----------------------------------------------


def test_preview_records_round_trip(store: StateStore) -> None:
    store.save_environment("staging", target="local", status="ready")
    store.save_environment("pr-fix-login", target="local", status="ready")
    expires = now() + timedelta(hours=48)
    rec = store.record_preview(
        "pr-fix-login", branch="fix/login", source="staging", expires_at=expires
    )
    assert rec.state == "awake" and rec.creator == store.actor and rec.ended_at is None
    assert abs((rec.expires_at - expires).total_seconds()) < 1
    assert [p.env for p in store.previews()] == ["pr-fix-login"]

    asleep = store.set_preview_state("pr-fix-login", "asleep")
    assert asleep.state == "asleep" and asleep.awake_seconds >= 0
    later = asleep.state_since + timedelta(hours=5)
    assert asleep.awake_so_far(later) == asleep.awake_seconds  # asleep time does not count
    awake = store.set_preview_state("pr-fix-login", "awake")
    assert awake.awake_so_far(awake.state_since + timedelta(hours=2)) >= 7200

    extended = store.set_preview_expiry("pr-fix-login", expires + timedelta(hours=1))
    assert extended.seconds_left() > 48 * 3600

    store.end_preview("pr-fix-login")
    assert store.previews() == []
    ended = store.get_preview("pr-fix-login")
    assert ended is not None and ended.ended_at is not None  # kept as history
    with pytest.raises(BadInput, match="is not a preview"):
        store.set_preview_expiry("pr-fix-login", expires)
    again = store.record_preview(
        "pr-fix-login", branch="fix/login", source="staging", expires_at=expires
    )
    assert again.ended_at is None and again.awake_seconds == 0


def test_preview_records_refuse_bad_values(store: StateStore) -> None:
    with pytest.raises(BadInput):
        store.record_preview("Bad Name", branch="x", source="staging", expires_at=now())
    with pytest.raises(BadInput):
        store.record_preview("pr-x1", branch="", source="staging", expires_at=now())
    store.save_environment("pr-x1", target="local", status="ready")
    store.record_preview("pr-x1", branch="x1", source="staging", expires_at=now())
    with pytest.raises(BadInput, match="invalid preview state"):
        store.set_preview_state("pr-x1", "dozing")


# Real previews ---------------------------------------------------------------------------

BRANCH = "feature/JIRA-123_Add-Thing"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except urllib.error.URLError:
        return 0  # refused: the moment nginx takes the port back from the doorman


@pytest.mark.slow
def test_a_preview_is_created_updated_extended_capped_and_destroyed(project: Project) -> None:
    project.edit_matrix("    max_per_creator: 3", "    max_per_creator: 1")
    before = set(project.home.glob("*"))  # nothing yet
    for bad, says in (
        (["--branch", ".."], "no letter or digit"),
        (["--branch", "x1", "--ttl", "5x"], "invalid --ttl"),
        (["--branch", "x1", "--ttl", "30d"], "at most 14d"),
        (["--branch", "x1", "--from", "nowhere"], "no environment 'nowhere'"),
        (["--branch", "x1", "--release", "rel-20990101-000000-abcdef"], "no release"),
    ):
        refused = project.run("preview", "create", *bad)
        assert refused.returncode == 2 and says in refused.stderr, (bad, refused.stderr)
        assert "Traceback" not in refused.stderr
    # Only the store and the validated copy of the matrix (which was fine) are made.
    assert project.json("preview", "list") == [] and set(project.home.glob("*")) <= before | {
        project.home / "state.db",
        project.home / "cache",
    }

    created = project.json("preview", "create", "--branch", BRANCH, "--ttl", "1h")
    assert isinstance(created, dict) and created["created"] is True
    name = created["name"]
    assert name.startswith("pr-feature-jira-123-add") and len(name) <= 30
    assert created["source"] == "staging" and created["state"] == "awake"
    assert 58 <= created["expires_in_minutes"] <= 60
    assert float(created["cost_per_hour"]) > 0  # staging's list prices, per hour
    assert _get(created["url"]) == 200  # its URL answers
    assert _get(created["url"] + "api/health") == 200

    again = project.json("preview", "create", "--branch", BRANCH, "--ttl", "2h")
    assert isinstance(again, dict) and again["created"] is False and again["name"] == name
    assert again["url"] == created["url"]  # the same environment, updated
    assert again["expires_in_minutes"] >= 118

    quota = project.run("preview", "create", "--branch", "other-branch")
    assert quota.returncode == 3, quota.stderr
    assert "max_per_creator" in quota.stderr and name in quota.stderr

    too_long = project.run("preview", "extend", name, "--ttl", "15d")
    assert too_long.returncode == 2 and "max_ttl" in too_long.stderr
    extended = project.json("preview", "extend", name, "--ttl", "3d")
    assert isinstance(extended, dict) and extended["expires_in_minutes"] >= 3 * 24 * 60 - 2

    listed = project.json("preview", "list")
    assert isinstance(listed, list) and [p["name"] for p in listed] == [name]
    assert listed[0]["branch"] == BRANCH and listed[0]["status"] == "ready"
    assert listed[0]["cost_so_far"] is not None

    # an ordinary environment for other commands, never part of the promotion pipeline
    info = project.json("info", name)
    assert isinstance(info, dict) and info["status"] == "ready"
    release = project.run("release", "create", "--service", "backend=1.1.0", "-o", "json")
    assert release.returncode == 0, release.stderr
    rel = json.loads(release.stdout)["id"]
    promoted = project.run("promote", rel, "--to", name)
    assert promoted.returncode == 2 and "outside the pipeline" in promoted.stderr

    gone = project.run("preview", "destroy", name)
    assert gone.returncode == 0 and "verified" in gone.stdout, gone.stderr
    assert not (project.home / "environments" / name).exists()
    assert project.json("preview", "list") == []
    twice = project.run("preview", "destroy", name)
    assert twice.returncode == 0 and "already destroyed" in twice.stdout
    unknown = project.run("preview", "destroy", "pr-nothing")
    assert unknown.returncode == 2 and "not a preview" in unknown.stderr


STAGING_RULES = """    data:
      masking:
        public.users.email: hash
        public.users.phone: null
        public.payments.card: redact
"""


@pytest.mark.slow
def test_a_preview_with_data_from_an_approval_environment_is_masked(project: Project) -> None:
    project.make_staging_an_approval_environment()
    assert project.run("create", "staging").returncode == 0
    stg = seed(project, "staging", rows=500)
    with psycopg.connect(stg.postgres, autocommit=True) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM users")]
        phones = [r[0] for r in conn.execute("SELECT phone FROM users")]
        cards = [r[0] for r in conn.execute("SELECT card FROM payments")]
        # Staging's statistics sample the real values (pg_stats' histograms, readable by the
        # tables' owner): a physical copy carries them.
        conn.execute("ANALYZE users, payments")
        sampled = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE attname IN ('phone', 'card') "
            "AND histogram_bounds IS NOT NULL"
        ).fetchone()
        assert sampled == (2,)

    refused = project.run("preview", "create", "--branch", "fix/masking", "--with-data")
    assert refused.returncode == 3 and "masking" in refused.stderr
    assert project.json("preview", "list") == []  # nothing recorded

    project.edit_matrix(
        "    services:\n      backend:\n        replicas: 2\n",
        "    services:\n      backend:\n        replicas: 2\n" + STAGING_RULES,
    )
    done = project.json("preview", "create", "--branch", "fix/masking", "--with-data")
    assert isinstance(done, dict) and done["created"] is True
    assert any("public.users" in line for line in done["masking"]), done["masking"]
    copy = urls(project, done["name"])
    with psycopg.connect(copy.postgres) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (len(emails),)
        leaked = conn.execute(
            "SELECT count(*) FROM users WHERE email = ANY(%s) OR phone = ANY(%s)", [emails, phones]
        ).fetchone()
        assert leaked == (0,)
        assert conn.execute(
            "SELECT count(*) FROM payments WHERE card = ANY(%s)", [cards]
        ).fetchone() == (0,)
        stats = conn.execute(
            "SELECT coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '') "
            "FROM pg_stats WHERE schemaname = 'public' AND attname IN ('email', 'phone', 'card')"
        ).fetchall()
        assert stats and not any(
            value in row[0] for row in stats for value in (*emails, *phones, *cards)
        )
    # The masked copy was made and masked before the preview's cluster existed: one operation,
    # the backend started once (on masked data), no database or staged copy left beside.
    ops = project.json("history", done["name"])
    assert isinstance(ops, list) and [o["kind"] for o in ops] == ["create"]
    env_dir = project.home / "environments" / done["name"]
    assert (env_dir / "log" / "supervisord.log").read_text().count("spawned: 'svc-backend-0'") == 1
    assert not list(project.home.glob(f"environments/.{done['name']}.*"))
    with psycopg.connect(copy.postgres) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert names == {"postgres", "template0", "template1", copy.postgres.rsplit("/", 1)[1]}
    # No file of its cluster (tables, indexes, catalogs, WAL) holds an original phone or card:
    # what could be read of the data directory by the preview's own user.
    originals = (b"+1-555-", b"4111000")
    for path in (env_dir / "data" / "postgres").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(value in data for value in originals), path
    assert project.run("preview", "destroy", done["name"]).returncode == 0


def _listener(cwd: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """A process 'started from an environment's directory', listening on `port`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: port_accepts(port), what=f"listener on {port}")
    return proc


@pytest.mark.slow
def test_gc_reaps_expired_finishes_a_killed_destroy_and_removes_orphans(project: Project) -> None:
    doomed = project.json("preview", "create", "--branch", "fix/doomed", "--ttl", "2s")
    kept = project.json("preview", "create", "--branch", "fix/kept", "--ttl", "1h")
    assert isinstance(doomed, dict) and isinstance(kept, dict)
    envs = project.home / "environments"
    ghost_dir = envs / "ghost"
    ghost_dir.mkdir()
    (ghost_dir / "left.txt").write_text("left behind")
    p1, p2 = free_ports(2)
    ghost = _listener(ghost_dir, p1)
    # a process of an environment whose directory is already gone: only its marker says so
    marked = _listener(Path("/tmp"), p2, ENVPLANE_ENV_DIR=str(envs / "gone-env"))
    try:
        time.sleep(2.5)  # the doomed preview's TTL passes
        listed = project.json("preview", "list")
        assert isinstance(listed, list)
        mins = {p["name"]: p["expires_in_minutes"] for p in listed}
        assert mins[doomed["name"]] < 0 <= mins[kept["name"]]

        dry = project.json("gc", "--dry-run")
        assert isinstance(dry, dict) and dry["expired"] == [doomed["name"]]
        orphans = {o["name"]: o for o in dry["orphans"]}
        assert set(orphans) == {"ghost", "gone-env"}
        assert orphans["ghost"]["exists"] and p1 in orphans["ghost"]["ports"]
        assert not orphans["gone-env"]["exists"] and p2 in orphans["gone-env"]["ports"]
        assert (envs / doomed["name"]).is_dir()  # a dry run destroys nothing

        killed = project.run("gc", ENVPLANE_FAULT_KILL_AFTER_STEP="3")
        assert killed.returncode == -signal.SIGKILL
        info = project.json("info", doomed["name"])
        assert isinstance(info, dict) and info["status"] == "destroying"

        done = project.json("gc")
        assert isinstance(done, dict) and done["resumed"] == [doomed["name"]], done
        assert done["failed"] == {} and done["orphans_removed"] == []  # listed only
        assert not (envs / doomed["name"]).exists()
        assert ghost.poll() is None and marked.poll() is None and ghost_dir.is_dir()

        removed = project.json("gc", "--orphans")
        assert isinstance(removed, dict)
        assert sorted(removed["orphans_removed"]) == ["ghost", "gone-env"], removed
        assert ghost.wait(10) is not None and marked.wait(10) is not None
        assert not ghost_dir.exists() and not port_accepts(p1) and not port_accepts(p2)
    finally:
        for proc in (ghost, marked):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # nothing the live preview owns was touched
    assert _get(kept["url"]) == 200
    after = project.json("preview", "list")
    assert isinstance(after, list) and [p["name"] for p in after] == [kept["name"]]
    assert project.json("gc")["orphans"] == []  # type: ignore[index]

    # --every: a bounded loop, one document per pass; SIGTERM ends it cleanly
    loop = project.run("gc", "--every", "1s", "--runs", "2", "-o", "json")
    assert loop.returncode == 0 and loop.stdout.count('"dry_run"') == 2
    runner = subprocess.Popen(
        [ENVPLANE, "-f", str(project.matrix), "gc", "--every", "1s"],
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None
    first = runner.stdout.readline()  # the first pass is done: the loop is waiting
    assert "nothing to reap" in first
    runner.send_signal(signal.SIGTERM)
    _out, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err

    assert project.run("preview", "destroy", kept["name"]).returncode == 0


def _head(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read().decode()


@pytest.mark.slow
def test_sleep_wake_and_the_idle_detector(project: Project) -> None:
    project.edit_matrix("  sleep_after: 2h", "  sleep_after: 5s")
    idle = project.json("preview", "create", "--branch", "fix/idle", "--ttl", "1h")
    busy = project.json("preview", "create", "--branch", "fix/busy", "--ttl", "1h")
    assert isinstance(idle, dict) and isinstance(busy, dict)
    data = seed(project, idle["name"], rows=300)
    before = digest(project, idle["name"], data)
    ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in (data.postgres, data.redis)]

    stop = threading.Event()

    def keep_busy() -> None:  # requests keep `busy` awake, during gc too
        while not stop.is_set():
            _get(busy["url"])
            stop.wait(0.3)

    requests = threading.Thread(target=keep_busy, daemon=True)
    requests.start()
    try:
        time.sleep(5.5)  # `idle` had no request since it was created
        gc = project.json("gc")
    finally:
        stop.set()
        requests.join()
    assert isinstance(gc, dict) and gc["put_to_sleep"] == [idle["name"]], gc
    states = {p["name"]: p["state"] for p in project.json("preview", "list")}  # type: ignore[union-attr]
    assert states == {idle["name"]: "asleep", busy["name"]: "awake"}

    # asleep: servers stopped, ports kept, the URL answers "waking up" rather than refusing
    assert not any(port_accepts(p) for p in ports)
    assert project.json("info", idle["name"])["status"] == "degraded"  # type: ignore[index]
    status, headers, body = _head(idle["url"])
    assert status == 503 and headers.get("Retry-After") and "waking up" in body
    # wake_on_request: that request woke it
    wait_for(lambda: _get(idle["url"] + "api/health") == 200, timeout=60, what="woken")
    wait_for(
        lambda: project.json("info", idle["name"])["status"] == "ready",  # type: ignore[index]
        timeout=30,
        what="ready",
    )
    assert digest(project, idle["name"], urls(project, idle["name"])) == before
    assert urls(project, idle["name"]).frontend == data.frontend  # the same URL

    # by hand, without wake_on_request: the page says asleep, `wake` brings it back
    project.edit_matrix("  wake_on_request: true", "  wake_on_request: false")
    slept = project.json("sleep", idle["name"])
    assert isinstance(slept, dict) and "postgres" in slept["programs"]
    again = project.json("sleep", idle["name"])
    assert isinstance(again, dict) and again["messages"] == [f"{idle['name']} is asleep already"]
    status, _headers, body = _head(idle["url"])
    assert status == 503 and "is asleep" in body
    time.sleep(1)
    assert _head(idle["url"])[0] == 503  # nothing woke it
    # someone else on the sleeping environment's redis port: the wake refuses, naming it
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", ports[1]))
    squatter.listen()
    try:
        refused = project.run("wake", idle["name"])
    finally:
        squatter.close()
    assert refused.returncode == 1, refused.stderr
    assert f"port {ports[1]} is held by pid {os.getpid()}" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert _head(idle["url"])[0] == 503  # the doorman still answers: nginx was not started
    woke = project.json("wake", idle["name"])
    assert isinstance(woke, dict) and not woke["asleep"]
    assert {"postgres", "redis", "nginx"} <= set(woke["programs"]), woke
    assert _get(idle["url"] + "api/health") == 200
    assert digest(project, idle["name"], urls(project, idle["name"])) == before
    assert project.json("info", idle["name"])["status"] == "ready"  # type: ignore[index]
    ops = project.json("history", idle["name"])
    assert isinstance(ops, list)
    assert [(o["kind"], o["status"]) for o in ops[:2]] == [
        ("wake", "succeeded"),
        ("wake", "failed"),
    ]
    awake = project.json("wake", idle["name"])  # awake already: nothing started, still fine
    assert isinstance(awake, dict) and awake["programs"] == [], awake

    # a sleeping preview is destroyed like any other, verified
    assert project.run("sleep", busy["name"]).returncode == 0
    gone = project.run("preview", "destroy", busy["name"])
    assert gone.returncode == 0 and "verified" in gone.stdout, gone.stderr
    assert not port_accepts(int(busy["url"].rsplit(":", 1)[1].rstrip("/")))
    assert project.run("preview", "destroy", idle["name"]).returncode == 0
    unknown = project.run("sleep", "nowhere-env")
    assert unknown.returncode == 2 and "does not exist" in unknown.stderr


# Quotas, on recorded previews (no servers needed to count them) ---------------------------


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quotas: str) -> Workspace:
    matrix = tmp_path / "config" / "environment-matrix.yaml"
    matrix.parent.mkdir()
    matrix.write_text(re.sub(r"  quotas:\n(    .*\n)+", "  quotas:\n" + quotas, MATRIX))
    monkeypatch.setenv("ENVPLANE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENVPLANE_DATABASE_URL", raising=False)
    return Workspace.from_matrix(matrix)


def _recorded(ws: Workspace, *names: str) -> None:
    for name in names:
        ws.store.save_environment(
            name, target="local", status="ready", definition={"extends": "staging"}
        )
        ws.store.record_preview(
            name, branch=name, source="staging", expires_at=now() + timedelta(hours=1)
        )


def test_quota_of_previews_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(tmp_path, monkeypatch, "    max_previews: 2\n")
    _recorded(ws, "pr-one", "pr-two")
    with pytest.raises(Blocked) as caught:
        check_quotas(ws, "pr-three", {"extends": "staging"})
    assert "previews.quotas.max_previews" in caught.value.message
    assert "pr-one (" in caught.value.message and "pr-two (" in caught.value.message
    assert caught.value.exit_code == 3
    check_quotas(ws, "pr-two", {"extends": "staging"})  # an update of one of them is no new one
    ws.store.save_environment("pr-two", status="destroyed")  # gone by a plain destroy
    check_quotas(ws, "pr-three", {"extends": "staging"})


def test_quota_of_monthly_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(tmp_path, monkeypatch, "    monthly_cost_limit: 1000\n")
    _recorded(ws, "pr-one")
    with pytest.raises(Blocked) as caught:
        check_quotas(ws, "pr-two", {"extends": "staging"})
    text = caught.value.message
    assert "previews.quotas.monthly_cost_limit" in text and "$1,000.00" in text
    assert "pr-one $" in text  # what uses it, with its cost
    ws.store.end_preview("pr-one")
    check_quotas(ws, "pr-two", {"extends": "staging"})  # one staging-sized preview fits


@pytest.mark.slow
def test_a_preview_created_with_a_release_runs_it(project: Project) -> None:
    made = project.run("release", "create", "--service", "backend=1.1.0", "-o", "json")
    assert made.returncode == 0, made.stderr
    rel = json.loads(made.stdout)["id"]
    created = project.json("preview", "create", "--branch", "fix/with-release", "--release", rel)
    assert isinstance(created, dict) and created["created"] is True, created
    name = created["name"]
    try:
        deployed = created["release"]
        assert deployed["release"] == rel and deployed["environment"] == name, deployed
        assert deployed["status"] == "succeeded", deployed
        with urllib.request.urlopen(created["url"] + "api/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["version"] == "1.1.0" and health["environment"] == name, health
        text = project.run("preview", "create", "--branch", "fix/with-release", "--release", rel)
        assert text.returncode == 0, text.stderr  # again: the same preview, the release kept
        assert f"release: {rel} (" in text.stdout, text.stdout
    finally:
        for preview in project.json("preview", "list"):  # type: ignore[union-attr]
            project.run("preview", "destroy", preview["name"])
    assert project.json("preview", "list") == []


def _record_previews(project: Project, *names: str) -> None:
    """Previews in the project's own store, as `preview create` records them (no servers:
    a quota counts records)."""
    with StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home) as store:
        for name in names:
            store.save_environment(
                name, target="local", status="ready", definition={"extends": "staging"}
            )
            store.record_preview(
                name, branch=name, source="staging", expires_at=now() + timedelta(hours=1)
            )


@pytest.mark.parametrize(
    ("old", "new", "quota", "says"),
    [
        ("    max_previews: 10", "    max_previews: 2", "max_previews", ["pr-one (", "pr-two ("]),
        (
            "    monthly_cost_limit: 3000",
            "    monthly_cost_limit: 1000",
            "monthly_cost_limit",
            ["$1,000.00", "pr-one $", "pr-two $"],
        ),
    ],
)
def test_quotas_refuse_through_the_cli(
    project: Project, old: str, new: str, quota: str, says: list[str]
) -> None:
    project.edit_matrix(old, new)
    _record_previews(project, "pr-one", "pr-two")
    refused = project.run("preview", "create", "--branch", "fix/three")
    assert refused.returncode == 3, (refused.returncode, refused.stderr)
    assert f"previews.quotas.{quota}" in refused.stderr, refused.stderr
    for word in says:  # what uses the quota, each named
        assert word in refused.stderr, (word, refused.stderr)
    assert "Traceback" not in refused.stderr
    listed = project.json("preview", "list")
    assert isinstance(listed, list) and sorted(p["name"] for p in listed) == ["pr-one", "pr-two"]
    assert not (project.home / "environments").exists() or not any(
        (project.home / "environments").iterdir()
    )  # nothing was created
