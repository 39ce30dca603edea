"""Releases and deploys refused before anything moves: bad arguments, bad matrix rules, and the
approval an environment requires. Each refusal exits with its code, names the argument or the
matrix key (with file and line), prints no traceback, and changes nothing: `status ENV -o json`
is the same before and after, no rollout is started, no release is recorded.

One development and one production environment serve every case of the module (creating one
takes seconds); every case leaves the matrix as it found it, and the environments too, but the
last two, which deploy into production.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from envplane.delivery.deploy import deploy, plan_deploy
from envplane.errors import BadInput
from envplane.service import delivery
from envplane.settings import Settings
from envplane.state.procs import os_user
from envplane.state.store import StateStore
from envplane.workspace import Workspace
from tests.conftest import EXAMPLE, Project, open_tmpdir
from tests.support import teardown_project

pytestmark = pytest.mark.slow

# The example's deployment_strategies entries, as written (production's after the fixture's
# edit below).
DEV = "  development:\n    primary: recreate\n"
STAGING = "  staging:\n    primary: rolling\n"
PROD = "  production:\n    primary: rolling\n"
BACKEND_PORT = "    port: 3000\n"  # a line of the top-level backend service
WORKER = """\
  worker:
    command: ["{python}", "app/backend.py"]
    port: 3001
"""


@dataclass
class Setup:
    project: Project
    release: str  # backend=1.1.0, never deployed into development


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    base = open_tmpdir("envplane-rules-")
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    project = Project(root=root, home=base / "home")
    try:
        # Production lighter (one backend replica, not three), and deployed by rolling:
        # blue-green's post-promotion analysis needs traffic this module does not send, and
        # the rules here are about what is refused before any strategy runs.
        project.edit_matrix("backend:\n        replicas: 3", "backend:\n        replicas: 1")
        project.edit_matrix("  production:\n    primary: blue_green\n", PROD)
        for env in ("development", "production"):
            created = project.run("create", env)
            assert created.returncode == 0, created.stderr
        made = project.run("release", "create", "--service", "backend=1.1.0")
        assert made.returncode == 0, made.stderr
        yield Setup(project, made.stdout.strip())
    finally:
        teardown_project(project)
        shutil.rmtree(base, ignore_errors=True)


def status(project: Project, env: str) -> dict[str, object]:
    doc = project.json("status", env)
    assert isinstance(doc, dict)
    return doc


def releases(project: Project) -> list[dict[str, object]]:
    doc = project.json("releases")
    assert isinstance(doc, list)
    return doc


def refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@contextmanager
def edited(project: Project, *pairs: tuple[str, str]) -> Iterator[str]:
    """The matrix with each (old, new) replaced once; yields its text; restored after."""
    original = project.matrix.read_text()
    try:
        for old, new in pairs:
            project.edit_matrix(old, new)
        yield project.matrix.read_text()
    finally:
        project.matrix.write_text(original)


@contextmanager
def workspace(project: Project) -> Iterator[Workspace]:
    """The library's view of the project's state, as the CLI opens it."""
    home = project.home
    ws = Workspace(Settings(project.matrix.absolute(), home, f"sqlite:///{home / 'state.db'}"))
    try:
        yield ws
    finally:
        ws.close()


def snapshot(project: Project, envs: tuple[str, ...]) -> object:
    """Each env's `status ENV -o json` document (the service layer's StatusView, which the
    CLI prints as it is: its live release, what each service runs, its last rollouts) and
    `releases -o json`'s; read in-process, a CLI start costs a second on a loaded machine."""
    with workspace(project) as ws:
        return (
            {env: delivery.status(ws, env).model_dump(mode="json") for env in envs},
            [r.model_dump(mode="json") for r in delivery.releases(ws)],
            {env: len(ws.store.rollouts(env, limit=1000)) for env in envs},
        )


@contextmanager
def unchanged(project: Project, *envs: str) -> Iterator[None]:
    """What each of `envs` runs, its rollouts and the recorded releases are the same after
    the block as before it."""
    before = snapshot(project, envs)
    yield
    assert snapshot(project, envs) == before


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "words"),
    [
        (
            "rel-20260101-000000-abcdef",
            ("no release 'rel-20260101-000000-abcdef'", "envplane releases"),
        ),
        ("nonsense", ("invalid release id 'nonsense'", "rel-")),
    ],
    ids=["well-formed", "malformed"],
)
def test_deploying_an_unknown_release_is_bad_input(
    setup: Setup, release: str, words: tuple[str, ...]
) -> None:
    project = setup.project
    with unchanged(project, "development"):
        refused(project.run("deploy", "development", release), 2, *words)


def test_a_strategy_the_environment_does_not_allow_is_bad_input(setup: Setup) -> None:
    project = setup.project
    with unchanged(project, "development"):
        result = project.run("deploy", "development", setup.release, "--strategy", "canary")
        refused(result, 2, "--strategy canary", "development deploys by recreate or rolling")


@pytest.mark.parametrize(
    ("pins", "words"),
    [
        (
            ["backend=9.9.9"],
            ("service backend has no version '9.9.9'", "versions:", "1.0.0, 1.1.0, 1.2.0-bad"),
        ),
        (["nope=1.0"], ("--service nope", "no service 'nope'", "services: backend")),
        (["backend"], ("--service 'backend'", "NAME=VERSION")),
        (["backend="], ("--service 'backend='", "NAME=VERSION")),
        (["backend=1.0;true"], ("invalid version '1.0;true'", "service backend")),
        (["backend=1.1.0", "backend=1.0.0"], ("--service backend is given twice",)),
    ],
    ids=["unknown-version", "unknown-service", "no-equals", "no-version", "bad-chars", "twice"],
)
def test_a_bad_release_is_refused_and_nothing_is_recorded(
    setup: Setup, pins: list[str], words: tuple[str, ...]
) -> None:
    project = setup.project
    args = [arg for pin in pins for arg in ("--service", pin)]
    with unchanged(project):
        refused(project.run("release", "create", *args, "-m", "never recorded"), 2, *words)


# -- matrix rules ----------------------------------------------------------------------------

MATRIX_CASES = [
    (
        "weights-not-increasing",
        [(DEV, DEV + "    steps: [{weight: 50}, {weight: 25}]\n")],
        "steps: [{weight: 50}",
        "deployment_strategies.development.steps",
        "canary weights must increase: 25 comes after 50",
    ),
    (
        "weight-above-100",
        [(DEV, DEV + "    steps: [{weight: 50}, {weight: 150}]\n")],
        "steps: [{weight: 50}",
        "deployment_strategies.development.steps[1].weight",
        "less than or equal to 100, got 150",
    ),
    (
        "success-rate-above-100",
        [(DEV, DEV + "    analysis: {success_rate: 101}\n")],
        "success_rate: 101",
        "deployment_strategies.development.analysis.success_rate",
        "less than or equal to 100, got 101",
    ),
    (
        "interval-zero",
        [(DEV, DEV + "    analysis: {interval: 0s}\n")],
        "interval: 0s",
        "deployment_strategies.development.analysis.interval",
        "an analysis interval is between 0.5s and 1h",
    ),
    (
        "soak-not-a-duration",
        [(STAGING, STAGING + "    soak: tenminutes\n")],
        "soak: tenminutes",
        "deployment_strategies.staging.soak",
        "expected a duration like 30s, 10m, 1h or 500ms",
    ),
    (
        "promote-from-itself",
        [(STAGING, STAGING + "    promote_from: staging\n")],
        "promote_from: staging",
        "deployment_strategies.staging.promote_from",
        "an environment cannot be promoted from itself",
    ),
    (
        "promote-from-unknown",
        [(STAGING, STAGING + "    promote_from: testing\n")],
        "promote_from: testing",
        "deployment_strategies.staging.promote_from",
        "no environment named 'testing'",
    ),
    (
        "promote-from-loop",
        [
            (STAGING, STAGING + "    promote_from: production\n"),
            (PROD, PROD + "    promote_from: staging\n"),
        ],
        "promote_from: staging",  # production's: the first of the two in the file
        "deployment_strategies.production.promote_from",
        "promotion loops back: production -> staging -> production",
    ),
    (
        "depends-on-unknown",
        [(BACKEND_PORT, BACKEND_PORT + "    depends_on: [cache-svc]\n")],
        "depends_on: [cache-svc]",
        # Reported for the first environment that gets the service, where it is written.
        "environments.production.services.backend.depends_on[0]",
        "depends on 'cache-svc', which is not a service of this environment",
    ),
    (
        "version-not-in-versions",
        [('    version: "1.0.0"\n', '    version: "1.9.9"\n')],
        'version: "1.9.9"',
        "services.backend.version",
        "version '1.9.9' is not one of `versions:` (1.0.0, 1.1.0, 1.2.0-bad)",
    ),
]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("edits", "needle", "key", "fragment"),
    [case[1:] for case in MATRIX_CASES],
    ids=[case[0] for case in MATRIX_CASES],
)
def test_a_bad_delivery_rule_is_located_and_blocks_deploy(
    setup: Setup, edits: list[tuple[str, str]], needle: str, key: str, fragment: str
) -> None:
    project = setup.project
    with unchanged(project, "development"), edited(project, *edits) as text:
        where = f"{project.matrix}:{line_of(text, needle)}: {key}: "
        checked = project.run("check")
        refused(checked, 2, f"error: {where}", fragment)
        deployed = project.run("deploy", "development", setup.release)
        refused(deployed, 2, where, fragment)


def test_a_bad_duration_message_has_no_unfilled_placeholder(setup: Setup) -> None:
    project = setup.project
    with edited(project, (STAGING, STAGING + "    soak: tenminutes\n")):
        checked = project.run("check")
    refused(checked, 2, "deployment_strategies.staging.soak", "'tenminutes'")
    assert "{value" not in checked.stderr, checked.stderr


def test_a_loop_through_a_default_upstream_is_refused(setup: Setup) -> None:
    project = setup.project
    with edited(project, (STAGING, STAGING + "    promote_from: production\n")):
        checked = project.run("check")
    refused(checked, 2, "deployment_strategies.staging.promote_from", "loops back")


# -- a release naming a service the environment does not run ---------------------------------


def test_a_release_naming_a_service_the_environment_does_not_run_is_bad_input(
    setup: Setup,
) -> None:
    """Environments only override top-level services (they cannot add or drop one), so such
    a release comes from a matrix that changed since: recorded while the matrix had a
    `worker`, deployed after it was taken out. The library refuses it the same way for a
    release recorded by the store directly."""
    project = setup.project
    with edited(project, ("\n# Values for the config", WORKER + "\n# Values for the config")):
        made = project.run("release", "create", "--service", "worker=1.0.0")
        assert made.returncode == 0, made.stderr
    release = made.stdout.strip()
    recorded = next(r["services"] for r in releases(project) if r["id"] == release)
    assert recorded == {"worker": "1.0.0", "backend": "1.0.0"}
    with unchanged(project, "development"):
        result = project.run("deploy", "development", release)
        refused(result, 2, f"release {release} names worker, which development does not run")
        assert "development runs: backend" in result.stderr

    with workspace(project) as ws:
        versions = {"backend": "1.1.0", "ghost": "1.0"}
        ghost = ws.store.create_release(versions, config_digest="0" * 64)
        with unchanged(project, "development"):
            with pytest.raises(
                BadInput, match=f"release {ghost.id} names ghost, which development"
            ):
                plan_deploy(ws, "development", ghost.id)
            with pytest.raises(BadInput, match="names ghost"):
                deploy(ws, "development", ghost.id)


# -- approval ----------------------------------------------------------------------------------


def test_production_takes_a_release_only_by_promotion_unless_forced(setup: Setup) -> None:
    project, release = setup.project, setup.release
    with unchanged(project, "production"):
        for extra in ((), ("--dry-run",)):
            result = project.run("deploy", "production", release, *extra)
            refused(
                result,
                3,
                "production requires approval",
                f"envplane promote {release} --to production",
                "--force",
            )

    forced = project.run("deploy", "production", release, "--force")
    assert forced.returncode == 0, forced.stderr
    after = status(project, "production")
    assert after["release"] == release
    assert after["services"] == {"backend": {"version": "1.1.0", "color": "green"}}
    last = after["last_rollouts"][0]  # type: ignore[index]
    assert last["release"] == release and last["status"] == "succeeded"
    assert last["detail"]["forced"] is True
    store = StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home)
    try:
        audit = store.audit_log("production")
    finally:
        store.close()
    forced_lines = [a for a in audit if a.action == "forced" and release in a.detail]
    assert len(forced_lines) == 1, audit
    assert forced_lines[0].detail == f"deploy {release} past approval"
    assert forced_lines[0].actor == os_user()  # who ran it: the OS account, by its uid
    history = project.json("history", "production")
    assert isinstance(history, list)
    assert (history[0]["kind"], history[0]["status"]) == ("deploy", "succeeded")


def test_a_blue_green_without_traffic_is_held_not_rolled_back(setup: Setup) -> None:
    project = setup.project
    running = status(project, "production")["services"]["backend"]["version"]  # type: ignore[index]
    version = "1.0.0" if running != "1.0.0" else "1.1.0"
    made = project.run("release", "create", "--service", f"backend={version}")
    assert made.returncode == 0, made.stderr
    release = made.stdout.strip()
    blue_green = "  production:\n    primary: blue_green\n    analysis: {window: 1s}\n"
    with edited(project, (PROD, blue_green)):
        held = project.run("deploy", "production", release, "--force")
        refused(held, 3, "paused", "analysis inconclusive")
        assert status(project, "production")["in_flight"]["status"] == "paused"  # type: ignore[index]
        accepted = project.run("promote", "--continue", "--to", "production")
        assert accepted.returncode == 0, accepted.stderr
    assert status(project, "production")["release"] == release
