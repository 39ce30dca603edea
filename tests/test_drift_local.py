"""`envplane drift` on a real local environment of the Sunday example: each change made behind
envplane's back (a config file edited, a Redis CONFIG SET, a replica stopped, ALTER SYSTEM +
reload, a program's launch environment edited and restarted) is reported field by field with
both values; `update` puts every one back and `drift` then exits 0. Bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.localkit import wait_for

pytestmark = pytest.mark.slow

ENV = "development"


def _drift(project: Project) -> tuple[int, dict[str, Any]]:
    result = project.run("drift", ENV, "-o", "json")
    assert result.returncode in (0, 1), result.stderr + result.stdout
    return result.returncode, json.loads(result.stdout)


def _item(report: dict[str, Any], resource: str, field: str) -> dict[str, Any]:
    found = [i for i in report["items"] if i["resource"] == resource and i["field"] == field]
    assert found, f"no drift of {resource} {field} in {json.dumps(report['items'], indent=1)}"
    return found[0]


def _accepts(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=1).close()
    except psycopg.Error:
        return False
    return True


def _supervisor(env_dir: Path) -> Any:
    from envplane.targets.local import supd
    from envplane.targets.local.layout import Layout

    return supd.client(Layout(env_dir)).supervisor


def test_drift_behind_envplanes_back_is_reported_and_update_puts_it_back(
    project: Project,
) -> None:
    import psycopg
    import redis

    created = project.run("create", ENV)
    assert created.returncode == 0, created.stderr + created.stdout
    clean = project.run("drift", ENV)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "none" in clean.stdout

    info = project.json("info", ENV, "--show-secrets")
    assert isinstance(info, dict)
    secrets_shown = [info["endpoints"]["postgres"], info["endpoints"]["redis"]]
    env_dir = project.home / "environments" / ENV

    # 1. a config file the backend reads, edited on disk
    log_level = env_dir / "config" / "app-config" / "LOG_LEVEL"
    log_level.write_text("TRACE")
    # 2. Redis: a CONFIG SET
    with redis.Redis.from_url(info["endpoints"]["redis"]) as r:
        r.config_set("maxmemory-policy", "allkeys-lru")
    # 3. PostgreSQL: ALTER SYSTEM, then a reload so it takes effect
    port = int(info["endpoints"]["postgres"].rsplit(":", 1)[1].split("/")[0])
    sockets = env_dir / "run" / "postgres"
    with psycopg.connect(
        host=str(sockets), port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("ALTER SYSTEM SET work_mem = '64MB'")
        conn.execute("SELECT pg_reload_conf()")
        # and one that takes a restart, restarted behind envplane's back too
        conn.execute("ALTER SYSTEM SET max_connections = 50")
    supervisor = _supervisor(env_dir)
    supervisor.stopProcess("postgres", True)
    supervisor.startProcess("postgres", True)
    wait_for(lambda: _accepts(info["endpoints"]["postgres"]), what="postgres after its restart")
    # 4. a replica stopped (killed, and supervisord told not to bring it back)
    supervisor.stopProcess("svc-backend-0", True)

    code, report = _drift(project)
    assert code == 1 and report["drift"] is True
    config = _item(report, "config/config", "app-config/LOG_LEVEL")
    assert config["expected"].startswith("sha256 ") and config["actual"].startswith("sha256 ")
    assert config["expected"] != config["actual"]
    policy = _item(report, "redis/redis", "maxmemory-policy")
    assert (policy["expected"], policy["actual"]) == ("noeviction", "allkeys-lru")
    assert "CONFIG SET" in policy["changed_by"]
    work_mem = _item(report, "postgres/postgres", "work_mem")
    assert work_mem["expected"] == "4096kB (default)" and work_mem["actual"] == "64MB"
    assert "ALTER SYSTEM" in work_mem["changed_by"]
    connections = _item(report, "postgres/postgres", "max_connections")
    assert (connections["expected"], connections["actual"]) == ("100 (postgresql.conf)", "50")
    replicas = _item(report, "service/backend", "replicas")
    assert (replicas["expected"], replicas["actual"]) == ("1 running", "0 running")
    # Nothing was changed by looking, and no secret is in the report.
    assert log_level.read_text() == "TRACE"
    assert supervisor.getProcessInfo("svc-backend-0")["statename"] == "STOPPED"
    text = project.run("drift", ENV)
    assert text.returncode == 1
    assert "maxmemory-policy" in text.stdout and "allkeys-lru" in text.stdout
    for shown in secrets_shown:
        password = shown.split("@")[0].rsplit(":", 1)[1]
        assert password not in text.stdout and password not in json.dumps(report)

    # The planner sees each of them, so `update` repairs them all.
    updated = project.run("update", ENV)
    assert updated.returncode == 0, updated.stderr + updated.stdout
    code, report = _drift(project)
    assert code == 0, report["items"]
    assert log_level.read_text() != "TRACE"
    with redis.Redis.from_url(info["endpoints"]["redis"]) as r:
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    with psycopg.connect(info["endpoints"]["postgres"]) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)
        assert conn.execute("SHOW max_connections").fetchone() == ("100",)
    assert supervisor.getProcessInfo("svc-backend-0")["statename"] == "RUNNING"

    # 5. a program's launch environment edited and the program restarted by hand: the live
    # process runs another environment than the driver would give it.
    spec = env_dir / "run" / "programs" / "svc-backend-0.json"
    launch = json.loads(spec.read_text())
    launch["env"]["DEBUG_TRACE"] = "1"
    spec.write_text(json.dumps(launch))
    supervisor.stopProcess("svc-backend-0", True)
    supervisor.startProcess("svc-backend-0", True)
    code, report = _drift(project)
    assert code == 1
    fields = {i["field"]: i for i in report["items"] if i["resource"] == "service/backend"}
    live = [f for f in fields if f.startswith("program svc-backend-0 (pid ")]
    assert live and live[0].endswith("env.DEBUG_TRACE"), fields
    assert (fields[live[0]]["expected"], fields[live[0]]["actual"]) == ("(unset)", "1")
    assert fields["program svc-backend-0 env.DEBUG_TRACE"]["changed_by"] == "launch spec edited"
    assert project.run("update", ENV).returncode == 0
    assert _drift(project)[0] == 0

    destroyed = project.run("destroy", ENV, "--force")
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout
    gone = project.run("drift", ENV)
    assert gone.returncode == 2 and "not created" in gone.stderr


def test_drift_bad_input_exits_2(project: Project) -> None:
    unknown = project.run("drift", "stagign")
    assert unknown.returncode == 2
    assert "stagign" in unknown.stderr and "staging" in unknown.stderr  # did you mean
    assert "Traceback" not in unknown.stderr
    never = project.run("drift", "staging", "-o", "json")
    assert never.returncode == 2 and never.stdout == ""
    error = json.loads(never.stderr)
    assert error["exit_code"] == 2 and "not created" in error["error"]
    assert "envplane create staging" in error["hint"]
    bad = project.run("drift", "../etc")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
