"""envplane backup / restore / clone --with-data against plain pg_dump / pg_restore, in one run.

Creates the Sunday example's development environment in a private ENVPLANE_HOME, fills its
database to ~200 MB (plus 100k Redis keys and some files), then for N rounds, side by side:
  - pg_dump -Fc of the app database            vs  envplane backup development (full: a physical
                                                    base backup of PostgreSQL) and backup --logical
                                                    (a pg_dump archive)
  - pg_restore -j 2 into a fresh database       vs  envplane restore development <id> --force, of
                                                    each of those two backups
  - pg_dump -Fc + pg_restore -j 2 (a copy)      vs  envplane clone development <new> --with-data
                                                    (while a client keeps querying the source)
Prints every figure, the medians, and the ratios the targets are stated in.
Usage: python benchmarks/bench_data.py [ROUNDS] [MB]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchkit
import psycopg
import redis

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")
PG_BIN = next(p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))


class Bench:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="envplane-bench-", dir="/tmp"))
        self.base.chmod(0o755)
        shutil.copytree(EXAMPLE, self.base / "sunday")
        self.home = self.base / "home"
        self.matrix = self.base / "sunday" / "config" / "environment-matrix.yaml"
        self.env = {**os.environ, "ENVPLANE_HOME": str(self.home), "NO_COLOR": "1"}
        self.env.pop("ENVPLANE_DATABASE_URL", None)

    def run(self, *args: str) -> tuple[float, str]:
        started = time.perf_counter()
        proc = subprocess.run(
            [ENVPLANE, "-f", str(self.matrix), *args],
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        took = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"envplane {' '.join(args)} failed:\n{proc.stderr}")
        return took, proc.stdout

    def info(self, env: str) -> dict[str, str]:
        _t, out = self.run("info", env, "--show-secrets", "-o", "json")
        return dict(json.loads(out)["endpoints"])

    def socket(self, env: str) -> tuple[str, str]:
        sockdir = self.home / "environments" / env / "run" / "postgres"
        port = next(
            p.name.rsplit(".", 1)[-1] for p in sockdir.glob(".s.PGSQL.*") if p.suffix != ".lock"
        )
        return str(sockdir), port

    def client(self, tool: str, env: str, *args: str) -> float:
        host, port = self.socket(env)
        argv = [str(PG_BIN / tool), "-h", host, "-p", port, "-U", "postgres", *args]
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
        return time.perf_counter() - started

    def quiesce(self) -> None:
        """Untimed, before every timed step: a checkpoint and a sync, so each one starts with
        no dirty data of the step before (a clone's pg_basebackup would otherwise pay for
        flushing what the previous restore wrote)."""
        self.client("psql", "development", "-d", "postgres", "-qc", "CHECKPOINT")
        os.sync()

    def close(self) -> None:
        if self.home.exists():
            for env in ("development", "bench-copy"):
                subprocess.run(
                    [ENVPLANE, "-f", str(self.matrix), "destroy", env, "--force"],
                    env=self.env,
                    capture_output=True,
                )
        shutil.rmtree(self.base, ignore_errors=True)


def fill(bench: Bench, megabytes: int) -> str:
    ends = bench.info("development")
    scale = megabytes / 200
    users, payments = int(400_000 * scale), int(850_000 * scale)
    with psycopg.connect(ends["postgres"], autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text, phone text, name text)"
        )
        conn.execute(
            "CREATE TABLE payments (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), "
            "card text, amount numeric(12,2), note text)"
        )
        conn.execute(
            "INSERT INTO users SELECT g, 'user' || g || '@example.com', "
            "'+1-555-' || lpad(g::text, 7, '0'), md5(g::text) FROM generate_series(1, %s) g",
            [users],
        )
        conn.execute(
            "INSERT INTO payments SELECT g, 1 + (g %% %s), '4111' || lpad(g::text, 12, '0'), "
            "(g %% 1000) / 3.0, repeat(md5(g::text), 2) FROM generate_series(1, %s) g",
            [users, payments],
        )
        conn.execute("CREATE INDEX ON payments (user_id)")
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        pretty = str(size.fetchone()[0])  # type: ignore[index]
    r = redis.Redis.from_url(ends["redis"])
    pipe = r.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"key:{i}", f"value-{i}")
    pipe.execute()
    r.close()
    storage = Path(ends["storage"][len("file://") :])
    for i in range(50):
        (storage / f"object-{i}.bin").write_bytes(os.urandom(64 * 1024))
    return pretty


def prober(url: str, stop: threading.Event, errors: list[str], count: list[int]) -> None:
    while not stop.is_set():
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT count(*) FROM users").fetchone()
            count[0] += 1
        except Exception as exc:
            errors.append(str(exc))
        time.sleep(0.1)


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    bench = Bench()
    times: dict[str, list[float]] = {}

    def note(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)
        print(f"  {name:34} {seconds:6.2f} s", flush=True)

    try:
        bench.run("create", "development")
        print(f"database of development: {fill(bench, megabytes)}; 100k Redis keys; 50 objects")
        dump = bench.base / "plain.dump"
        for n in range(1, rounds + 1):
            print(f"round {n}")
            dump.unlink(missing_ok=True)
            bench.quiesce()
            note(
                "pg_dump -Fc",
                bench.client(
                    "pg_dump", "development", "-Fc", "-f", str(dump), "-d", "sunday_development"
                ),
            )
            bench.quiesce()
            took, out = bench.run("backup", "development", "-o", "json")
            manifest = json.loads(out)
            note("envplane backup (full, encrypted)", took)
            note("  of which the backup itself", float(manifest["seconds"]))
            bench.quiesce()
            took, out = bench.run("backup", "development", "--logical", "-o", "json")
            logical = json.loads(out)
            note("envplane backup --logical", took)
            psql = ("psql", "development", "-d", "postgres", "-qc")
            bench.client(*psql, "DROP DATABASE IF EXISTS plain_restore")
            bench.client(*psql, "CREATE DATABASE plain_restore")
            bench.quiesce()
            note(
                "pg_restore -j 2",
                bench.client(
                    "pg_restore", "development", "-j", "2", "-d", "plain_restore", str(dump)
                ),
            )
            bench.client(*psql, "DROP DATABASE plain_restore")
            bench.quiesce()
            took, out = bench.run(
                "restore", "development", manifest["backup_id"], "--force", "-o", "json"
            )
            note("envplane restore (verify+decrypt)", took)
            note("  of which the restore itself", float(json.loads(out)["seconds"]))
            shutil.rmtree(manifest["path"])
            bench.quiesce()
            took, out = bench.run(
                "restore", "development", logical["backup_id"], "--force", "-o", "json"
            )
            note("envplane restore of --logical", took)
            shutil.rmtree(logical["path"])
            ends = bench.info("development")
            stop, count = threading.Event(), [0]
            errors: list[str] = []
            thread = threading.Thread(target=prober, args=(ends["postgres"], stop, errors, count))
            bench.quiesce()
            thread.start()
            took, out = bench.run("clone", "development", "bench-copy", "--with-data", "-o", "json")
            stop.set()
            thread.join()
            note("envplane clone --with-data", took)
            note("  of which the data copy", float(json.loads(out)["data_seconds"]))
            print(f"    source answered {count[0]} queries during the clone, {len(errors)} errors")
            bench.run("destroy", "bench-copy", "--force")
    finally:
        bench.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    copy = med["pg_dump -Fc"] + med["pg_restore -j 2"]
    print("\nmedians")
    for name, value in med.items():
        print(f"  {name:34} {value:6.2f} s")
    print("\nratios (targets: backup <= 1.15x, restore <= 1.15x, clone >= 2x faster)")
    print(
        f"  backup  / pg_dump -Fc                  {med['envplane backup (full, encrypted)'] / med['pg_dump -Fc']:5.2f}x"
    )
    print(
        f"  restore / pg_restore -j 2              {med['envplane restore (verify+decrypt)'] / med['pg_restore -j 2']:5.2f}x"
    )
    print(
        f"  (pg_dump + pg_restore) / clone         {copy / med['envplane clone --with-data']:5.2f}x faster"
    )
    print(
        f"  backup --logical / pg_dump -Fc         {med['envplane backup --logical'] / med['pg_dump -Fc']:5.2f}x"
    )
    print(
        f"  restore of --logical / pg_restore -j 2 {med['envplane restore of --logical'] / med['pg_restore -j 2']:5.2f}x"
    )
    inner = med["  of which the restore itself"] / med["pg_restore -j 2"]
    print(f"  restore (operation only) / pg_restore   {inner:5.2f}x")
    print(
        f"  (pg_dump + pg_restore) / clone data copy {copy / med['  of which the data copy']:5.2f}x faster"
    )
    print("  (envplane figures are whole CLI runs - process start, plan, verification, services")
    print("   stopped and started - unless marked 'of which')")


if __name__ == "__main__":
    main()
