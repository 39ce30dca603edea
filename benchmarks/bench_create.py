"""envplane create (local target) against starting the same parts by hand, in one run.

Prints, for N rounds: the wall time of `envplane create development` of the Sunday example
(fresh ENVPLANE_HOME with a warm template cache, as a user's second environment would be) and
of the raw sequence a person would type: initdb + postgres, redis-server, the backend app, nginx,
prometheus, each waited on until it answers. Also `envplane --help` and `plan` of 200 generated
environments. Usage: python benchmarks/bench_create.py [ROUNDS]
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import benchkit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
BIN = Path(sys.executable).parent
ENVPLANE = str(BIN / "envplane")


def pg_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise SystemExit("PostgreSQL server binaries not found")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.01)
    raise RuntimeError("timed out waiting for a server")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return bool(r.status == 200)


def demote() -> Callable[[], None] | None:
    if os.getuid() != 0:
        return None
    user = pwd.getpwnam(os.environ.get("ENVPLANE_RUN_USER", "nobody"))

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop


def raw_start(base: Path) -> tuple[float, list[subprocess.Popen[bytes]]]:
    """What one would do by hand, as fast as one could: each part started and awaited."""
    drop = demote()
    if os.getuid() == 0:
        user = pwd.getpwnam(os.environ.get("ENVPLANE_RUN_USER", "nobody"))
        os.chown(base, user.pw_uid, user.pw_gid)
    procs: list[subprocess.Popen[bytes]] = []
    logs = open(base / "raw.log", "ab")  # noqa: SIM115
    t0 = time.monotonic()
    pg, redis_port, app, web, prom = (free_port() for _ in range(5))
    bindir = pg_bindir()
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(base / "pg"), "-A", "trust", "-U", "postgres"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=drop,
        cwd=base,
    )
    procs.append(
        subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(base / "pg"),
                "-p",
                str(pg),
                "-k",
                str(base),
                "-c",
                "listen_addresses=127.0.0.1",
            ],
            stdout=logs,
            stderr=logs,
            preexec_fn=drop,
        )
    )
    procs.append(
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(base),
            ],
            stdout=logs,
            stderr=logs,
            preexec_fn=drop,
        )
    )
    wait_for(
        lambda: (
            subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(pg)], capture_output=True
            ).returncode
            == 0
        )
    )
    env = dict(
        os.environ,
        PORT=str(app),
        DATABASE_HOST="127.0.0.1",
        DATABASE_PORT=str(pg),
        DATABASE_USER="postgres",
        DATABASE_PASSWORD="",
        DATABASE_NAME="postgres",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(redis_port),
        REDIS_PASSWORD="",
        ENVIRONMENT_NAME="raw",
    )
    procs.append(
        subprocess.Popen(
            [sys.executable, str(EXAMPLE / "app" / "backend.py")],
            env=env,
            stdout=logs,
            stderr=logs,
            preexec_fn=drop,
            cwd=EXAMPLE,
        )
    )
    conf = base / "nginx.conf"
    conf.write_text(
        f"daemon off; pid {base}/nginx.pid; error_log {base}/nginx.err;\n"
        f"events {{}}\nhttp {{ access_log off; client_body_temp_path {base}/cb; proxy_temp_path {base}/pt;\n"
        f"fastcgi_temp_path {base}/ft; uwsgi_temp_path {base}/ut; scgi_temp_path {base}/st;\n"
        f"server {{ listen 127.0.0.1:{web}; location /api/ {{ proxy_pass http://127.0.0.1:{app}/; }}\n"
        f"location /health {{ return 200; }} }} }}\n"
    )
    procs.append(
        subprocess.Popen(
            ["/usr/sbin/nginx", "-c", str(conf), "-p", str(base)],
            stdout=logs,
            stderr=logs,
            preexec_fn=drop,
        )
    )
    (base / "prom.yml").write_text(
        f"scrape_configs:\n- job_name: backend\n  static_configs:\n  - targets: ['127.0.0.1:{app}']\n"
    )
    procs.append(
        subprocess.Popen(
            [
                "prometheus",
                f"--config.file={base}/prom.yml",
                f"--storage.tsdb.path={base}/tsdb",
                f"--web.listen-address=127.0.0.1:{prom}",
            ],
            stdout=logs,
            stderr=logs,
            preexec_fn=drop,
        )
    )
    wait_for(lambda: http_ok(f"http://127.0.0.1:{web}/health"))
    wait_for(lambda: http_ok(f"http://127.0.0.1:{prom}/-/ready"))
    wait_for(lambda: http_ok(f"http://127.0.0.1:{app}/health"))
    return time.monotonic() - t0, procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        nginx = isinstance(p.args, list) and p.args[0] == "/usr/sbin/nginx"
        p.send_signal(signal.SIGQUIT if nginx else signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def envplane(home: Path, *args: str) -> float:
    env = dict(os.environ, ENVPLANE_HOME=str(home), NO_COLOR="1")
    t0 = time.monotonic()
    subprocess.run(
        [ENVPLANE, "-f", str(EXAMPLE / "config" / "environment-matrix.yaml"), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - t0


def tmpdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="envplane-bench-", dir="/tmp"))
    path.chmod(0o755)
    return path


def plan_200() -> float:
    base = tmpdir()
    lines = ["project: bench", "environments:"]
    for i in range(200):
        lines += [
            f"  env-{i:03d}:",
            "    regions: {primary: us-east-1}",
            "    databases:",
            "      primary: {engine: postgresql, version: '15', instance_class: db.t3.micro, "
            "multi_az: false, backup_retention: 1}",
            "      cache: {engine: redis, node_type: cache.t3.micro, num_cache_nodes: 1}",
        ]
    matrix = base / "environment-matrix.yaml"
    matrix.write_text("\n".join(lines) + "\n")
    script = (
        "import sys,time; from envplane.workspace import Workspace; from envplane.lifecycle import plan_environment\n"
        "ws=Workspace.from_matrix(sys.argv[1]); t=time.monotonic()\n"
        "[plan_environment(ws, n) for n in ws.matrix.environments]\nprint(time.monotonic()-t)"
    )
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", script, str(matrix)],
        check=True,
        capture_output=True,
        env=dict(os.environ, ENVPLANE_HOME=str(base / "home")),
    )
    elapsed = time.monotonic() - t0
    shutil.rmtree(base, ignore_errors=True)
    return elapsed


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ours, raw = [], []
    warm = tmpdir()
    envplane(warm, "create", "development")  # builds the template cluster cache once
    envplane(warm, "destroy", "development", "--force")
    for _ in range(rounds):
        home = tmpdir()
        # A user's next environment: the home already has the template cluster (and the spare
        # copy envplane keeps ready). cp -a keeps the run user's ownership, as in a real home.
        subprocess.run(["cp", "-a", str(warm / "cache"), str(home / "cache")], check=True)
        ours.append(envplane(home, "create", "development"))
        envplane(home, "destroy", "development", "--force")
        shutil.rmtree(home, ignore_errors=True)
        base = tmpdir()
        elapsed, procs = raw_start(base)
        raw.append(elapsed)
        stop(procs)
        shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(warm, ignore_errors=True)
    helps = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run([ENVPLANE, "--help"], check=True, capture_output=True)
        helps.append(time.monotonic() - t0)
    med_ours, med_raw = statistics.median(ours), statistics.median(raw)
    print(
        f"envplane create development   median {med_ours:.2f}s  min {min(ours):.2f}s  max {max(ours):.2f}s"
    )
    print(
        f"raw start of the same parts   median {med_raw:.2f}s  min {min(raw):.2f}s  max {max(raw):.2f}s"
    )
    print(
        f"ratio envplane/raw            {med_ours / med_raw:.2f}x   (target <= 1.5x, create <= 3 s)"
    )
    print(f"envplane --help               median {statistics.median(helps):.3f}s (target <= 0.3 s)")
    print(
        f"plan for 200 environments     {plan_200():.2f}s wall incl. interpreter start (target <= 2 s)"
    )


if __name__ == "__main__":
    main()
