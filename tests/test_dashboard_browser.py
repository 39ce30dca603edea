"""The dashboard in a real browser: Playwright driving Debian's Chromium (`/usr/bin/chromium`,
`make system` installs it; Playwright's own browser is never downloaded) against a real
`envplane serve` process and real local environments of the Sunday example.

The pipeline is the Sunday example's first two stages, development -> staging, with staging
made `approval_required` in this test's copy (and the production-like policy rules it does
not meet disabled, each with its reason): production's create would add a third full
environment for nothing the dashboard shows differently. Every backend runs one replica; the
preview is derived from development. Three environments in all, destroyed at the end.

Two people: alice, a deployer scoped to development, staging and pr-* who signs in with a
user name and password, and bob, an approver who signs in with a token; a viewer token shows
what a role that may not approve sees. Screenshots of every page go to $ENVPLANE_ARTIFACTS
(default tests/artifacts/dashboard, git-ignored); the directory is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from envplane.previews.naming import preview_name
from tests.conftest import ENVPLANE, EXAMPLE, REPO, Project, open_tmpdir
from tests.support import teardown_project

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
STAGING_APPROVAL = (
    "  staging:\n    primary: rolling\n    alternatives: [blue_green]\n"
    "    validation_required: standard\n    approval_required: false\n"
)
# staging is not production-grade: the default rules for approval environments it misses
POLICIES = """
policies:
  disable:
    multi-az: "test copy: staging made approval_required keeps its single-AZ database"
    network-policies: "test copy: staging made approval_required keeps basic policies"
    iam-roles-strict: "test copy: staging made approval_required keeps standard roles"
    secondary-region: "test copy: staging made approval_required keeps one region"
"""
BRANCH = "feature/dashboard"
PREVIEW = preview_name(BRANCH, "pr-")  # as the matrix's previews.prefix names it
WAIT_MS = 300_000  # an operation on 2 loaded cores


def artifacts() -> Path:
    where = Path(os.environ.get("ENVPLANE_ARTIFACTS", REPO / "tests" / "artifacts")) / "dashboard"
    where.mkdir(parents=True, exist_ok=True)
    return where


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(project: Project) -> Iterator[str]:
    """A real `envplane serve` on a free loopback port; SIGTERM (then SIGKILL) at the end."""
    port = free_port()
    log = project.home.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [ENVPLANE, "-f", str(project.matrix), "serve", "--port", str(port)],
            env=project.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"envplane serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class World:
    project: Project
    url: str
    release: str
    bob: str  # the approver's token
    viewer: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system` installs Debian's chromium")
    base = open_tmpdir("envplane-dash-")
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    project = Project(root=root, home=base / "home")
    try:
        project.edit_matrix("backend:\n        replicas: 3", "backend:\n        replicas: 1")
        project.edit_matrix("backend:\n        replicas: 2", "backend:\n        replicas: 1")
        project.edit_matrix(STAGING_APPROVAL, STAGING_APPROVAL.replace("false", "true"))
        project.matrix.write_text(project.matrix.read_text() + POLICIES)
        for env in ("development", "staging"):
            ok(project.run("create", env, timeout=600))
        release = ok(project.run("release", "create", "--service", "backend=1.1.0")).stdout.strip()
        ok(project.run("deploy", "development", release, timeout=600))
        ok(project.run("validate", "development", "--level", "standard", timeout=600))
        ok(project.run("preview", "create", "--branch", BRANCH, "--from", "development",
                       timeout=600))  # fmt: skip
        scope = "development,staging,pr-*"
        ok(project.run("user", "add", "alice", "--role", "deployer", "--envs", scope,
                       input=PASSWORD + "\n"))  # fmt: skip
        tokens = {}
        for name, role in (("bob", "approver"), ("watcher", "viewer")):
            made = ok(project.run("token", "create", "--name", name, "--role", role))
            found = re.search(r"ept_[A-Za-z0-9_-]+", made.stdout + made.stderr)
            assert found, made.stdout + made.stderr
            tokens[name] = found.group(0)
        with serve(project) as url:
            try:
                yield World(project, url, release, tokens["bob"], tokens["watcher"])
            finally:  # the server's log beside the screenshots
                shutil.copy(project.home.parent / "serve.log", artifacts() / "serve.log")
    finally:
        for env in (PREVIEW, "staging", "development"):
            project.run("destroy", env, "--force", timeout=600)
        teardown_project(project)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox needs user namespaces a root test run lacks
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Any, name: str) -> None:
    path = artifacts() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def signed_in(browser: Any, url: str, *, token: str | None = None) -> Any:
    """A page of a fresh browser context (its own cookies), signed in."""
    page = browser.new_context(base_url=url).new_page()
    page.set_default_timeout(60_000)
    page.goto("/ui/")
    assert "/ui/sign-in" in page.url  # no session: the sign-in page
    if token is not None:
        page.get_by_role("textbox", name="Token").fill(token)
        page.get_by_role("button", name="Sign in with the token").click()
    else:
        page.get_by_role("textbox", name="User name").fill("alice")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/ui/")
    return page


def to_operation(page: Any, button: Any) -> None:
    """Press `button`: its form answers with an operation's page (else: what it said)."""
    with page.expect_navigation(timeout=120_000):
        button.click()
    if "/ui/operations/" not in page.url:
        shot(page, "unexpected")
        raise AssertionError(f"{page.url}: {page.locator('main').inner_text()}")


def wait_ended(page: Any) -> str:
    """The operation page's stream ran to its `end` event: the state it gave."""
    page.wait_for_selector("#ended[data-state]", timeout=WAIT_MS)
    return str(page.get_attribute("#ended", "data-state"))


def csrf_of(page: Any) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


def cli_json(project: Project, *args: str) -> Any:
    return json.loads(ok(project.run(*args, "-o", "json")).stdout)


def test_the_dashboard_end_to_end(world: World, browser: Any) -> None:
    print(f"dashboard screenshots in {artifacts()}")
    project = world.project
    alice = signed_in(browser, world.url)
    shot(alice, "environments")

    # Development is healthy in the list: its row says ready and 1/1 services, with its URL.
    row = alice.locator("tr[data-env=development]")
    assert row.locator("[data-col=status]").inner_text().strip() == "ready"
    assert row.locator("[data-col=services]").inner_text().strip() == "1/1"
    assert (
        row.locator("[data-col=url] a")
        .get_attribute("href", timeout=5000)
        .startswith("http://127.0.0.1:")
    )
    assert row.locator("[data-col=release]").inner_text().strip() == world.release
    assert "/month" in row.locator("[data-col=cost]").inner_text()
    preview_cost = alice.locator(f'tr[data-env="{PREVIEW}"] [data-col=cost]').inner_text()
    assert "/h" in preview_cost and "expires" in preview_cost
    # The filter, as you type (the script) and as a GET form without it.
    alice.get_by_role("searchbox", name="Filter").fill("staging")
    assert alice.locator("tr[data-env=development]").is_hidden()
    assert alice.locator("tr[data-env=staging]").is_visible()
    alice.goto("/ui/?q=staging")
    assert alice.locator("tr[data-env=development]").count() == 0
    # Live status: the rows are fetched again without a reload.
    alice.goto("/ui/")
    alice.locator("#live", has_text="updated").wait_for(timeout=20_000)
    alice.set_viewport_size({"width": 390, "height": 844})
    shot(alice, "environments-phone")
    alice.set_viewport_size({"width": 1280, "height": 900})

    # One environment: endpoints with passwords hidden, services, release, notes.
    alice.get_by_role("link", name="development", exact=True).click()
    alice.wait_for_url("**/ui/environments/development")
    endpoints = alice.locator("section[aria-labelledby=h-endpoints]").inner_text()
    assert "postgresql://app:***@127.0.0.1:" in endpoints
    secrets = cli_json(project, "info", "development", "--show-secrets")["endpoints"]
    password = re.search(r"postgresql://app:([^@]+)@", secrets["postgres"])
    assert password and password.group(1) != "***"
    assert password.group(1) not in alice.content()
    assert "runs as processes on this machine" in alice.content()  # what local cannot honour
    shot(alice, "environment")

    # CSRF: a change made with the session cookie but without its token is refused (403)
    # by the dashboard's form and by the API's route alike, and changes nothing.
    form = alice.request.post("/ui/environments/development/backup", form={"backup_type": "config"})
    assert form.status == 403, form.text()
    assert "CSRF" in form.text()
    wrong = alice.request.post(
        "/ui/environments/development/backup",
        form={"backup_type": "config", "csrf_token": "not-the-token"},
    )
    assert wrong.status == 403
    api = alice.request.post("/environments/development/backups", data={"backup_type": "config"})
    assert api.status == 403, api.text()
    assert api.headers["content-type"].startswith("application/problem+json")
    assert cli_json(project, "backups", "development") == []

    # A backup taken and restored with the buttons; each operation's page streams to its end.
    to_operation(alice, alice.get_by_role("button", name="Take a backup"))
    assert wait_ended(alice) == "succeeded"
    [backup] = cli_json(project, "backups", "development")
    alice.goto("/ui/environments/development")
    backup_id = backup["backup_id"]
    alice.get_by_role("button", name=f"Restore development from {backup_id}").click()
    alice.wait_for_url("**/restore")  # a second form confirms, as the CLI asks to
    assert "replaces the data" in alice.locator("main").inner_text()
    shot(alice, "restore-confirm")
    to_operation(alice, alice.get_by_role("button", name=f"Replace development with {backup_id}"))
    assert wait_ended(alice) == "succeeded"
    assert alice.locator("#progress li").count() > 2
    assert "restore of development succeeded" in alice.locator("#progress").inner_text()
    shot(alice, "operation-restore")
    history = cli_json(project, "history", "development")
    assert history[0]["kind"] == "restore" and history[0]["status"] == "succeeded"

    # alice requests the promotion to staging: recorded, held at the approval gate.
    alice.goto("/ui/promotions")
    alice.get_by_label("Release", exact=True).select_option(world.release)
    alice.get_by_label("To", exact=True).select_option("staging")
    alice.get_by_label("Why (optional)").fill("dashboard test")
    alice.get_by_role("button", name="Promote (or request approval)").click()
    alice.wait_for_url("**/ui/promotions?requested=*")
    card = alice.locator("article[data-promotion]")
    assert card.count() == 1
    gates = card.locator(".gates").inner_text()
    assert "live: open" in gates and "validation: open" in gates
    assert "approval: closed: 0 of 1 approvals" in gates
    assert card.get_by_role("button", name="Approve").count() == 0  # the requester's page
    assert "another person approves" in card.inner_text()
    shot(alice, "promotions-requested")
    [promotion] = cli_json(project, "promotions")
    assert promotion["status"] == "pending"

    # A viewer sees the pending promotion but neither approve nor promote.
    watcher = signed_in(browser, world.url, token=world.viewer)
    watcher.goto("/ui/promotions")
    assert watcher.locator("article[data-promotion]").count() == 1
    assert watcher.get_by_role("button", name="Approve").count() == 0
    assert watcher.get_by_role("button", name="Promote (or request approval)").count() == 0

    # bob, an approver, approves it (four-eyes: another person).
    bob = signed_in(browser, world.url, token=world.bob)
    bob.goto("/ui/promotions")
    shot(bob, "promotions-approver")
    bob.get_by_role("button", name="Approve").click()
    bob.wait_for_url("**/ui/promotions")
    assert cli_json(project, "promotions")[0]["status"] == "approved"
    assert bob.get_by_role("button", name=re.compile("^Promote")).count() == 0  # may not deploy

    # alice promotes now: the deploy's progress streams to its end, and staging runs it.
    alice.goto("/ui/promotions")
    to_operation(alice, alice.get_by_role("button", name=f"Promote {world.release} to staging now"))
    alice.wait_for_selector("#progress li", timeout=60_000)
    assert wait_ended(alice) == "succeeded"
    progress = alice.locator("#progress").inner_text()
    assert "started deploy of staging" in progress, progress
    assert "deploy of staging succeeded" in progress, progress
    shot(alice, "operation-deploy")
    assert cli_json(project, "status", "staging")["release"] == world.release
    alice.goto("/ui/promotions")
    stage = alice.locator("ol.pipeline li", has_text="staging")
    assert world.release in stage.inner_text()
    assert cli_json(project, "promotions")[0]["status"] == "deployed"

    # Previews: the branch, its expiry, the parity table; destroyed with its button.
    alice.goto("/ui/previews")
    row = alice.locator(f'tr[data-preview="{PREVIEW}"]')
    assert BRANCH in row.inner_text() and "min)" in row.inner_text()
    assert alice.locator("table.parity tbody tr").count() > 0
    shot(alice, "previews")
    to_operation(alice, row.get_by_role("button", name=f"Destroy {PREVIEW}"))
    assert wait_ended(alice) == "succeeded"
    alice.goto("/ui/previews")
    assert alice.locator(f'tr[data-preview="{PREVIEW}"]').count() == 0
    listed = {e["name"]: e["status"] for e in cli_json(project, "list")}
    assert listed.get(PREVIEW, "destroyed") == "destroyed"


def test_pages_need_a_session_and_a_bad_sign_in_says_why(world: World, browser: Any) -> None:
    page = browser.new_context(base_url=world.url).new_page()
    page.goto("/ui/environments/development")
    assert "/ui/sign-in?next=/ui/environments/development" in page.url
    page.get_by_role("textbox", name="Token").fill("ept_not-a-real-token")
    page.get_by_role("button", name="Sign in with the token").click()
    assert page.get_by_role("alert").inner_text() == "unknown or revoked credentials"
    shot(page, "sign-in-refused")
    answer = page.request.get("/ui/rows")
    assert answer.status == 401
    # An unknown environment's page is the CLI's error, with its hint, and a 404.
    bob = signed_in(browser, world.url, token=world.bob)
    gone = bob.request.get("/ui/environments/stagign")
    assert gone.status == 404 and "staging" in gone.text()  # did you mean
