"""A real `envplane serve` process and a real local environment created through it: two
clients creating one environment (one 202, one 409 naming the holder), 50 concurrent reads
while the create runs, the progress stream to its end, the environment's processes not root,
destroy through the API, and no token or password in any response, log line or audit row."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apikit import serve, wait_job
from tests.conftest import Project

pytestmark = pytest.mark.slow
PASSWORD = "an unguessable passphrase 42"


def _uids_of_env(env_dir: Path) -> set[int]:
    """The uids of the processes rooted in the environment's directory (their command line
    or working directory inside it), read from /proc."""
    uids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if str(env_dir) in cmdline or cwd.startswith(str(env_dir)):
            line = next(x for x in status.splitlines() if x.startswith("Uid:"))
            uids.add(int(line.split()[2]))  # the effective uid
    return uids


def test_concurrent_creates_reads_events_and_no_secret_anywhere(project: Project) -> None:
    made = project.run("token", "create", "--name", "ops", "--role", "admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    other = project.run("token", "create", "--name", "ci", "--role", "deployer", "-o", "json")
    ci_token = json.loads(other.stdout)["token"]
    added = project.run("user", "add", "alice", "--role", "viewer", input=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    secrets = [token, ci_token, PASSWORD]
    bodies: list[str] = []
    with serve(project) as server:
        with server.client(token) as ops, server.client(ci_token) as ci:
            answers: list[httpx.Response] = []
            barrier = threading.Barrier(2)

            def create(client: httpx.Client) -> None:
                barrier.wait()
                answers.append(client.post("/environments", json={"name": "development"}))

            racers = [threading.Thread(target=create, args=(c,)) for c in (ops, ci)]
            for t in racers:
                t.start()
            for t in racers:
                t.join()
            bodies += [a.text for a in answers]
            codes = sorted(a.status_code for a in answers)
            assert codes == [202, 409], [a.text for a in answers]
            accepted = next(a for a in answers if a.status_code == 202).json()
            refused = next(a for a in answers if a.status_code == 409).json()
            op_id = accepted["operation_id"]
            assert op_id and accepted["state"] == "running"
            assert refused["type"] == "urn:envplane:lock-held"
            assert op_id in refused["detail"] and op_id in refused["holder"]

            reads: list[int] = []
            seen: list[str] = []  # the create's state as the reads saw it
            lock = threading.Lock()

            def read(i: int) -> None:
                path = ("/environments", f"/operations/{op_id}", "/healthz")[i % 3]
                with server.client(token, timeout=30) as c:
                    r = c.get(path)
                with lock:
                    reads.append(r.status_code)
                    bodies.append(r.text)
                    if path.startswith("/operations/") and r.status_code == 200:
                        seen.append(r.json()["job"]["state"])

            readers = [threading.Thread(target=read, args=(i,)) for i in range(50)]
            for t in readers:
                t.start()
            for t in readers:
                t.join()
            assert reads == [200] * 50
            # The reads were answered while the create ran (it takes seconds; they began at once),
            # not after it: how many of them came before its end depends on the machine.
            assert "running" in seen and set(seen) <= {"running", "succeeded"}, seen

            events: list[dict[str, Any]] = []
            with ops.stream("GET", f"/operations/{op_id}/events", timeout=600) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
            kinds = [e["type"] for e in events]
            assert kinds[0] == "operation_started" and kinds[-1] == "end", kinds
            assert "step_finished" in kinds and "operation_finished" in kinds
            finished = next(e for e in events if e["type"] == "operation_finished")
            assert finished["status"] == "succeeded", events[-5:]
            bodies.append(json.dumps(events))

            done = wait_job(ops, op_id)
            assert done["operation"]["status"] == "succeeded"
            assert done["job"]["result"]["applied"] is True
            # from the journal now, as a client that comes later sees it
            replay = ops.get(f"/operations/{op_id}/events").text
            assert "operation_finished" in replay

            info = ops.get("/environments/development").json()
            bodies.append(json.dumps(info))
            assert info["status"] == "ready"
            assert all(s["ready"] == s["desired"] for s in info["services"].values()), info
            if os.geteuid() == 0:  # the server runs as root; the environment does not
                uids = _uids_of_env(project.home / "environments" / "development")
                assert uids, "no process of the environment found"
                assert 0 not in uids, uids

            signed = httpx.post(
                f"{server.url}/session", json={"user": "alice", "password": PASSWORD}
            )
            assert signed.status_code == 200
            bodies += [signed.text, json.dumps(dict(signed.headers))]
            audit = ops.get("/audit", params={"limit": 1000})
            assert audit.status_code == 200
            bodies.append(audit.text)
            tokens = ops.get("/tokens").text
            bodies.append(tokens)
            metrics = httpx.get(f"{server.url}/metrics").text
            assert 'envplane_operations_total{kind="create",outcome="succeeded"} 1.0' in metrics
            bodies.append(metrics)

            gone = ops.delete("/environments/development")
            assert gone.status_code == 202, gone.text
            bodies.append(gone.text)
            ended = wait_job(ops, gone.json()["operation_id"])
            assert ended["operation"]["status"] == "succeeded", ended
            assert ops.get("/environments/development").json()["status"] == "destroyed"
        log = server.log.read_text()
    rows = project.json("audit", "--limit", "10000")
    assert isinstance(rows, list)
    sources = {r["source"] for r in rows if r["source"]}
    assert any("(token ops)" in s or "(token ci)" in s for s in sources), sources
    assert any(r["outcome"] == "refused" and r["environment"] == "development" for r in rows)
    everything = "\n".join([*bodies, log, json.dumps(rows)])
    assert "GET /environments" in log  # the server's log was read
    for secret in secrets:
        assert secret not in everything
    for db in project.home.glob("state.db*"):  # the database and its write-ahead log
        data = db.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, db
