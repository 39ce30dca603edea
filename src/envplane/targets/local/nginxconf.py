"""The full nginx.conf of an environment: everything nginx writes stays inside env_dir."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, ToolMissing
from envplane.targets.local.layout import Layout

MIME_TYPES = Path("/etc/nginx/mime.types")
UPSTREAM_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Modules whose compiled-in temp dirs (/var/lib/nginx/...) nginx creates at start unless moved.
TEMP_MODULES = ("proxy", "fastcgi", "uwsgi", "scgi")


@functools.lru_cache(maxsize=1)
def binary() -> str:
    found = shutil.which("nginx", path="/usr/local/sbin:/usr/sbin:/usr/local/bin:/usr/bin")
    if not found:
        raise ToolMissing("nginx not found", hint="install it: `apt-get install nginx-light`")
    return found


@functools.lru_cache(maxsize=1)
def _temp_modules() -> tuple[str, ...]:
    out = subprocess.run([binary(), "-V"], capture_output=True, text=True, check=False).stderr
    return tuple(m for m in TEMP_MODULES if f"--without-http_{m}_module" not in out)


def prefix(layout: Layout) -> Path:
    return layout.env_dir / "nginx"


def conf_path(layout: Layout) -> Path:
    return prefix(layout) / "nginx.conf"


def error_log(layout: Layout) -> Path:
    return layout.log / "nginx-error.log"


def access_log(layout: Layout) -> Path:
    return layout.log / "nginx-access.log"


def temp_dirs(layout: Layout) -> list[Path]:
    return [prefix(layout) / "tmp" / name for name in ("client_body", *_temp_modules())]


def render_upstreams(key: str, upstreams: Mapping[str, Any]) -> str:
    blocks: list[str] = []
    for name, servers in sorted(upstreams.items()):
        if not UPSTREAM_RE.fullmatch(name) or not isinstance(servers, Sequence):
            raise BadInput(
                f"resource {key}: upstream {name!r} must be a word with a list of servers"
            )
        lines = [f"    upstream {name} {{"]
        for entry in servers:
            port, weight = entry.get("port"), entry.get("weight", 1)
            if not isinstance(port, int) or not isinstance(weight, int) or weight < 0:
                raise BadInput(f"resource {key}: upstream {name}: bad server {entry!r}")
            # nginx has no weight 0: a server that should get no traffic is marked down.
            tail = "down" if weight == 0 else f"weight={weight}"
            lines.append(f"        server 127.0.0.1:{port} {tail};")
        if not servers:
            lines.append("        server 127.0.0.1:1 down;  # no replicas")
        lines.append("    }")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def render(
    layout: Layout, env_name: str, key: str, server_conf: str, upstreams: Mapping[str, Any]
) -> str:
    mime = (
        f"include {MIME_TYPES};"
        if MIME_TYPES.is_file()
        else (
            "types { text/html html; application/javascript js; text/css css; "
            "application/json json; image/svg+xml svg; image/png png; }"
        )
    )
    temps = "\n".join(
        f"    {('client_body' if d.name == 'client_body' else d.name)}_temp_path {d};"
        for d in temp_dirs(layout)
    )
    return f"""# Written by envplane for environment {env_name}; rewritten on every apply.
daemon off;
master_process on;
worker_processes 1;
pid {layout.run / "nginx.pid"};
error_log {error_log(layout)} warn;
worker_shutdown_timeout 5s;

events {{
    worker_connections 512;
}}

http {{
    {mime}
    default_type application/octet-stream;
    # One JSON object a request: the upstream tried (several when nginx retried), its status
    # and time. Canary analysis reads each version's real traffic from it.
    log_format envplane_json escape=json '{{"t":$msec,"status":$status,'
        '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"upstream_time":"$upstream_response_time","request_time":$request_time,'
        '"uri":"$uri"}}';
    access_log {access_log(layout)} envplane_json;
{temps}
    sendfile on;

{render_upstreams(key, upstreams)}

{server_conf.strip()}
}}
"""
