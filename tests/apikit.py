"""Helpers of the REST API's tests: an in-process app on a project, tokens of each role, and
a real `envplane serve` process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from envplane.service.identities import create_token
from envplane.settings import Settings
from envplane.state.store import StateStore
from tests.conftest import ENVPLANE, Project

ROLES = ("viewer", "deployer", "approver", "admin")


def settings_of(project: Project) -> Settings:
    home = project.home
    return Settings(
        matrix_path=project.matrix, home=home, database_url=f"sqlite:///{home / 'state.db'}"
    )


def open_store(project: Project, actor: str | None = None) -> StateStore:
    s = settings_of(project)
    s.home.mkdir(parents=True, exist_ok=True)
    return StateStore.open(s.database_url, s.home, actor=actor)


def make_token(project: Project, name: str, role: str, **kw: Any) -> str:
    with open_store(project) as store:
        _record, token = create_token(store, name, role, **kw)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=bearer(token) if token else {}, timeout=timeout
        )


@contextlib.contextmanager
def serve(project: Project, *, workers: int = 2) -> Iterator[Server]:
    """A real `envplane serve` on a free loopback port, its output in a log file; stopped
    (SIGTERM, then SIGKILL) at the end."""
    port = free_port()
    log = project.home.parent / f"serve-{port}.log"
    project.home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [ENVPLANE, "-f", str(project.matrix), "serve", "--port", str(port),
             "--workers", str(workers)],
            env=project.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"envplane serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield Server(url, process, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_job(client: httpx.Client, ref: str, timeout: float = 600) -> dict[str, Any]:
    """The operation's document once its job (or journal) says it ended."""
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = client.get(f"/operations/{ref}").json()
        job = doc.get("job")
        op = doc.get("operation")
        if job is not None and job["state"] != "running":
            return doc
        if job is None and op is not None and op["status"] != "running":
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {ref} still running after {timeout}s: {doc}")
        time.sleep(0.5)
