"""PostgreSQL on the local target: reachable as the app user over TCP with its password only,
the superuser only over the private socket, passwords rotated in place, data kept."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from tests import localkit as k

pytestmark = pytest.mark.slow


def _connect(port: int, user: str, password: str | None) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=user,
        password=password,
        dbname="sunday_dev",
        connect_timeout=3,
        autocommit=True,
    )


def test_postgres_roles_rotation_and_idempotence() -> None:
    with k.local_env("pg-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.postgres(env))
        port = env.ports["postgres"]
        with _connect(port, "app", k.SECRETS["postgres-password"]) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == (
                "127.0.0.1",
            )
        with pytest.raises(psycopg.OperationalError, match="password"):
            _connect(port, "postgres", None)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect(port, "app", "wrong")

        pid = k.program_pid(env, "postgres")
        env.target.apply(env.ctx, "update", k.postgres(env))  # as desired: nothing happens
        assert k.program_pid(env, "postgres") == pid

        rotated = {**k.SECRETS, "postgres-password": "a-new-one"}
        ctx = dataclasses.replace(env.ctx, secret=rotated.__getitem__)
        assert not env.target.observe(ctx, k.postgres(env)).healthy
        env.target.apply(ctx, "update", k.postgres(env))
        assert env.target.observe(ctx, k.postgres(env)).healthy
        assert k.program_pid(env, "postgres") == pid  # no restart for a new password
        with _connect(port, "app", "a-new-one") as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
        with pytest.raises(psycopg.OperationalError):
            _connect(port, "app", k.SECRETS["postgres-password"])

        env.target.delete(ctx, k.postgres(env))
        assert not (env.env_dir / "data" / "postgres").exists()
        assert not env.target.observe(ctx, k.postgres(env)).exists


def test_template_cluster_is_built_once_when_two_race() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from envplane.targets.local import pgcluster
    from envplane.targets.local.layout import Layout
    from envplane.targets.local.runas import run_user

    with k.local_env("pg-race") as env:
        layout, user = Layout(env.env_dir), run_user()
        layout.cache.mkdir(parents=True)
        with ThreadPoolExecutor(2) as pool:
            built = list(pool.map(lambda _: pgcluster.template(layout, user), range(2)))
        assert built[0] == built[1] and (built[0] / "PG_VERSION").is_file()
        assert [p.name for p in layout.cache.iterdir()] == [built[0].name]  # no debris
