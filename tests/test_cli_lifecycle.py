"""The README's promise, end to end: create, info, validate, update, destroy a real environment."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.support import processes_under

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_create_info_validate_update_destroy(project: Project) -> None:
    created = project.run("create", "development")
    assert created.returncode == 0, created.stderr + created.stdout
    assert "+ postgres/postgres" in created.stdout  # the plan was shown before applying
    assert "created development" in created.stdout

    info = project.json("info", "development")
    assert isinstance(info, dict)
    assert info["status"] == "ready"
    assert info["target"] == "local"
    assert info["region"] == "us-east-1"
    assert info["services"]["backend"] == {
        "ready": 1,
        "desired": 1,
        "healthy": True,
        "version": "1.0.0",
    }
    pg_url = info["endpoints"]["postgres"]
    assert pg_url.startswith("postgresql://app:***@127.0.0.1:")
    assert info["endpoints"]["redis"].startswith("redis://:***@127.0.0.1:")
    assert info["last_operation"]["status"] == "succeeded"
    assert any("multi_az" in n or "instance class" in n for n in info["notes"])

    secret_info = project.json("info", "development", "--show-secrets")
    assert isinstance(secret_info, dict)
    assert "***" not in secret_info["endpoints"]["postgres"]
    plain = project.run("info", "development")
    assert "***" in plain.stdout and secret_info["endpoints"]["postgres"] not in plain.stdout

    front = info["endpoints"]["frontend"]
    status, body = _get(front)
    assert status == 200 and "<html" in body.lower()
    status, body = _get(front.rstrip("/") + "/api/health")
    health = json.loads(body)
    assert health["postgres"] == "ok" and health["redis"] == "ok"
    assert health["environment"] == "development"

    validated = project.run(
        "validate",
        "development",
        "--level",
        "comprehensive",
        "--junit",
        str(project.root / "v.xml"),
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "security" in validated.stdout and "FAIL" not in validated.stdout
    assert "<testsuites" in (project.root / "v.xml").read_text()

    unchanged = project.run("update", "development")
    assert unchanged.returncode == 0
    assert "No changes" in unchanged.stdout

    listed = project.json("list")
    assert isinstance(listed, list)
    assert {e["name"]: e["status"] for e in listed} == {
        "production": "not created",
        "staging": "not created",
        "development": "ready",
    }

    recorded = _recorded_ports(project, "development")
    # Each service's green ports are held for its next release; the rest listen now.
    ports = [int(p) for k, p in recorded.items() if "/green/" not in k]
    spare = [int(p) for k, p in recorded.items() if "/green/" in k]
    assert ports and all(_listening(p) for p in ports)
    assert spare and not any(_listening(p) for p in spare)
    env_dir = project.home / "environments" / "development"
    assert env_dir.is_dir()

    destroyed = project.run("destroy", "development", "--force")
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout
    assert "verified" in destroyed.stdout
    assert not env_dir.exists()
    assert not any(_listening(p) for p in ports)
    assert processes_under(project.home) == []
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "destroyed"
    kinds = [op["kind"] for op in project.json("history", "development")]  # type: ignore[union-attr]
    assert kinds == ["destroy", "create"]


def _recorded_ports(project: Project, env: str) -> dict[str, int]:
    import sqlite3

    con = sqlite3.connect(project.home / "state.db")
    try:
        row = con.execute("select ports from environments where name = ?", (env,)).fetchone()
    finally:
        con.close()
    return dict(json.loads(row[0]))


def test_update_changes_only_what_changed(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    before = project.json("info", "development")
    assert isinstance(before, dict)
    # backend replicas 1 -> 2 for development: exactly one step touches the service.
    project.edit_matrix(
        "  development:\n    regions:",
        "  development:\n    services:\n      backend:\n        replicas: 2\n    regions:",
    )
    plan = project.json("plan", "development")
    assert isinstance(plan, dict)
    changed = [(s["action"], s["resource"]) for s in plan["steps"] if s["action"] != "noop"]
    assert ("update", "service/backend") in changed
    assert all(
        r not in ("postgres/postgres", "redis/redis", "supervisor/supervisor") for _, r in changed
    )
    replicas = next(s for s in plan["steps"] if s["resource"] == "service/backend")["changes"]
    replica_change = next(c for c in replicas if c["path"] == "replicas")
    assert (replica_change["old"], replica_change["new"]) == (1, 2)
    # ...and the plan names the matrix line that caused it (the override just written)
    text = project.matrix.read_text()
    written = text.index("replicas: 2", text.index("  development:\n    services:"))
    line = text[:written].count("\n") + 1
    assert replica_change["cause"]["file"] == "config/environment-matrix.yaml"
    assert replica_change["cause"]["line"] == line

    result = project.run("update", "development")
    assert result.returncode == 0, result.stderr + result.stdout
    after = project.json("info", "development")
    assert isinstance(after, dict)
    assert after["services"]["backend"] == {
        "ready": 2,
        "desired": 2,
        "healthy": True,
        "version": "1.0.0",
    }
    # The database was not re-created: same endpoint, same data directory.
    assert after["endpoints"]["postgres"] == before["endpoints"]["postgres"]


def test_two_environments_side_by_side(project: Project) -> None:
    import subprocess

    env = project.env()
    procs = [
        subprocess.Popen(
            [
                os.environ.get(
                    "ENVPLANE_BIN", str(Path(__import__("sys").executable).parent / "envplane")
                ),
                "-f",
                str(project.matrix),
                "create",
                name,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("development", "staging")
    ]
    results = [(*p.communicate(timeout=180), p.returncode) for p in procs]
    for out, err, code in results:
        assert code == 0, out + err
    infos = {name: project.json("info", name) for name in ("development", "staging")}
    ports = [set(i["endpoints"].values()) for i in infos.values()]  # type: ignore[union-attr]
    assert not (ports[0] & ports[1])
    assert infos["staging"]["services"]["backend"]["ready"] == 2  # type: ignore[index]
