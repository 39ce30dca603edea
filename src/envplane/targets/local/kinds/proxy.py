"""Kind "proxy": nginx serving the frontend and switching traffic between service replicas.

A reload (SIGHUP) is not atomic: old workers keep answering until they exit. The switch counts
as done only when every old worker is gone."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from envplane.errors import BadInput, OperationFailed
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import nginxconf, procs, programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.specs import spec_map, spec_port, spec_str, spec_str_map

PROGRAM = "nginx"
RELOAD_TIMEOUT = 10.0
STATIC_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
STATIC_MODE = 0o640


def static_drift(root: Path, files: dict[str, str]) -> list[str]:
    """How the static files nginx serves from `root` differ from the ones the spec copied
    there: missing, changed (content or mode), or not in the spec. Files starting with '.' are
    an apply's files being written."""
    present = {p.name: p for p in root.iterdir() if p.is_file()} if root.is_dir() else {}
    present = {name: p for name, p in present.items() if not name.startswith(".")}
    drift = [f"{name} missing" for name in sorted(files) if name not in present]
    for name in sorted(set(files) & set(present)):
        try:
            same = present[name].read_bytes() == files[name].encode()
            mode = present[name].stat().st_mode & 0o777
        except OSError as exc:
            drift.append(f"{name} unreadable ({exc.strerror})")
            continue
        if not same:
            drift.append(f"{name} changed")
        elif mode != STATIC_MODE:
            drift.append(f"{name} has mode {mode:o}, not {STATIC_MODE:o}")
    drift += [f"{name} not in the spec" for name in sorted(set(present) - set(files))]
    return drift


def _answers(port: int) -> tuple[bool, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return True, f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _check_config(env: LocalEnv, candidate: Path) -> None:
    argv = [
        nginxconf.binary(),
        "-t",
        "-q",
        "-p",
        str(nginxconf.prefix(env.layout)),
        "-e",
        str(nginxconf.error_log(env.layout)),
        "-c",
        str(candidate),
    ]
    proc = subprocess.run(
        argv, capture_output=True, text=True, cwd="/", check=False, **env.user.popen_kwargs()
    )
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}"
        raise BadInput(
            f"nginx rejected the proxy configuration {candidate}: {message}",
            hint="fix the server block (the environment's frontend nginx.conf template); "
            "nothing was started or reloaded",
        )


def _write_static(env: LocalEnv, files: dict[str, str]) -> None:
    root = env.layout.frontend
    root.mkdir(exist_ok=True, mode=0o750)
    env.user.own(root)
    for name, content in files.items():
        if not STATIC_PART_RE.fullmatch(name):
            raise BadInput(f"static file name {name!r} must be a plain file name")
        atomic_write(root / name, content, mode=STATIC_MODE, user=env.user)
    for path in root.iterdir():
        if path.is_file() and path.name not in files:
            path.unlink()


def _reload(env: LocalEnv) -> None:
    state = programs.info(env, PROGRAM)
    if state is None or state["statename"] != programs.RUNNING:
        return
    master = int(state["pid"])
    old = set(procs.children(master))
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        current = set(procs.children(master))
        if not (old & current) and current - old:
            return
        if time.monotonic() > deadline:
            log = nginxconf.error_log(env.layout)
            raise OperationFailed(
                f"nginx did not finish its reload within {RELOAD_TIMEOUT:.0f}s "
                f"(old workers {sorted(old & current)} still running)\n{procs.log_tail(log)}",
            )
        time.sleep(0.005)


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    port = spec_port(res.spec, "port", res.key)
    server_conf = spec_str(res.spec, "server_conf", res.key)
    static = spec_str_map(res.spec, "static_files", res.key)
    upstreams = spec_map(res.spec, "upstreams", res.key)
    prefix = nginxconf.prefix(env.layout)
    for folder in (prefix, prefix / "tmp", *nginxconf.temp_dirs(env.layout)):
        folder.mkdir(exist_ok=True, mode=0o750)
        env.user.own(folder)
    text = nginxconf.render(env.layout, env.ctx.name, res.key, server_conf, upstreams)
    conf = nginxconf.conf_path(env.layout)
    changed = True
    if not conf.is_file() or conf.read_text(encoding="utf-8") != text:
        candidate = conf.with_name("nginx.conf.candidate")
        atomic_write(candidate, text, mode=0o640, user=env.user)
        _check_config(env, candidate)  # a bad block never reaches the running nginx
        os.replace(candidate, conf)
    else:
        changed = False
    _write_static(env, static)
    argv = [
        nginxconf.binary(),
        "-p",
        str(prefix),
        "-e",
        str(nginxconf.error_log(env.layout)),
        "-c",
        str(conf),
    ]
    program = programs.Program(PROGRAM, argv, prefix, stopsignal="QUIT")
    outcome = programs.ensure(env, program, ports=[port])
    if outcome == "unchanged" and changed:
        _reload(env)
    programs.wait_ready(env, PROGRAM, lambda: _answers(port))


def observe(env: LocalEnv, res: Resource) -> Observed:
    down = programs.not_running(env, PROGRAM)
    if down is not None:
        return down
    port = spec_port(res.spec, "port", res.key)
    ok, detail = _answers(port)
    if not ok:
        return Observed(True, False, detail)
    conf = nginxconf.conf_path(env.layout)
    text = nginxconf.render(
        env.layout,
        env.ctx.name,
        res.key,
        spec_str(res.spec, "server_conf", res.key),
        spec_map(res.spec, "upstreams", res.key),
    )
    if not conf.is_file() or conf.read_text(encoding="utf-8") != text:
        return Observed(True, False, f"{conf} differs from the spec")
    static = static_drift(env.layout.frontend, spec_str_map(res.spec, "static_files", res.key))
    if static:
        return Observed(True, False, f"static files in {env.layout.frontend}: " + ", ".join(static))
    return Observed(True, True, info={"port": port})


def delete(env: LocalEnv, res: Resource) -> None:
    programs.remove(env, PROGRAM)
    shutil.rmtree(nginxconf.prefix(env.layout), ignore_errors=True)
    shutil.rmtree(env.layout.frontend, ignore_errors=True)
