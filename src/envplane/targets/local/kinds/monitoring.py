"""Kind "monitoring": Prometheus scraping the environment's services, data under env_dir."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import time

from envplane.errors import BadInput, OperationFailed, ToolMissing
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.specs import spec_list, spec_port, spec_str

PROGRAM = "prometheus"
DURATION_RE = re.compile(r"^\d+(ms|s|m|h)$")
TARGET_RE = re.compile(r"^127\.0\.0\.1:\d{1,5}$")
JOB_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


def binary() -> str:
    found = shutil.which("prometheus", path="/usr/local/bin:/usr/bin:/usr/sbin")
    if not found:
        raise ToolMissing("prometheus not found", hint="install it: `apt-get install prometheus`")
    return found


def render(res: Resource) -> str:
    """prometheus.yml as JSON (a subset of YAML): exact, and no quoting surprises."""
    interval = spec_str(res.spec, "scrape_interval", res.key)
    if not DURATION_RE.fullmatch(interval):
        raise BadInput(
            f"resource {res.key}: scrape_interval {interval!r} is not a duration like 5s"
        )
    jobs = []
    for job in spec_list(res.spec, "jobs", res.key):
        name, path, targets = (
            job.get("name"),
            job.get("metrics_path", "/metrics"),
            job.get("targets"),
        )
        if (
            not (isinstance(name, str) and JOB_RE.fullmatch(name))
            or not isinstance(targets, list)
            or not all(isinstance(t, str) and TARGET_RE.fullmatch(t) for t in targets)
            or not (isinstance(path, str) and path.startswith("/"))
        ):
            raise BadInput(f"resource {res.key}: bad scrape job {job!r:.200}")
        jobs.append(
            {"job_name": name, "metrics_path": path, "static_configs": [{"targets": targets}]}
        )
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": jobs,
    }
    return (
        "# Written by envplane; rewritten on every apply.\n" + json.dumps(config, indent=2) + "\n"
    )


def _request(port: int, method: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read(300).decode(errors="replace").strip()
    finally:
        conn.close()


def _ready(port: int) -> tuple[bool, str]:
    try:
        status, body = _request(port, "GET", "/-/ready")
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return status == 200, f"HTTP {status}: {body}"


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    port = spec_port(res.spec, "port", res.key)
    conf = env.layout.etc / "prometheus.yml"
    changed = atomic_write(conf, render(res), mode=0o640, user=env.user)
    tsdb = env.layout.data / "prometheus"
    tsdb.mkdir(exist_ok=True, mode=0o750)
    env.user.own(tsdb)
    argv = [
        binary(),
        f"--config.file={conf}",
        f"--storage.tsdb.path={tsdb}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=7d",
    ]
    outcome = programs.ensure(env, programs.Program(PROGRAM, argv, tsdb), ports=[port])
    programs.wait_ready(env, PROGRAM, lambda: _ready(port))
    if outcome == "unchanged" and changed:
        _reload(port)


def _reload(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            status, body = _request(port, "POST", "/-/reload")
        except (OSError, http.client.HTTPException) as exc:
            status, body = 0, str(exc)
        if status == 200:
            return
        if status != 0 or time.monotonic() > deadline:
            raise OperationFailed(
                f"prometheus refused the new configuration: HTTP {status}: {body}"
            )
        time.sleep(0.1)


def observe(env: LocalEnv, res: Resource) -> Observed:
    down = programs.not_running(env, PROGRAM)
    if down is not None:
        return down
    ok, detail = _ready(spec_port(res.spec, "port", res.key))
    conf = env.layout.etc / "prometheus.yml"
    if ok and (not conf.is_file() or conf.read_text(encoding="utf-8") != render(res)):
        return Observed(True, False, f"{conf} differs from the spec")
    return Observed(True, ok, "" if ok else detail)


def delete(env: LocalEnv, res: Resource) -> None:
    programs.remove(env, PROGRAM)
    (env.layout.etc / "prometheus.yml").unlink(missing_ok=True)
    shutil.rmtree(env.layout.data / "prometheus", ignore_errors=True)
