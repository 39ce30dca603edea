"""A whole local environment, for real: every resource kind created, used, checked, deleted."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import pytest

from envplane.render.model import DesiredEnvironment
from tests import localkit as k

pytestmark = pytest.mark.slow


def _targets_up(port: int) -> bool:
    status, body = k.call(port, "/api/v1/targets")
    targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    return bool(targets) and all(t["health"] == "up" for t in targets)


def test_full_environment_create_use_delete(record_property: Callable[[str, object], None]) -> None:
    with k.local_env("full-env") as env:
        resources = k.all_resources(env)
        timings: dict[str, float] = {}
        start = time.monotonic()
        for res in resources:
            t0 = time.monotonic()
            env.target.apply(env.ctx, "create", res)
            timings[res.key] = round(time.monotonic() - t0, 3)
        timings["total"] = round(time.monotonic() - start, 3)
        record_property("create_seconds", timings)
        print(f"\ncreate timings (s): {timings}")

        for res in resources:
            seen = env.target.observe(env.ctx, res)
            assert seen.exists and seen.healthy, (res.key, seen)
        pg = env.target.observe(env.ctx, k.postgres(env))
        assert "requested PostgreSQL 14.9" in pg.detail  # the installed major is used, and said

        proxy = env.ports["proxy"]
        status, page = k.call(proxy, "/")
        assert status == 200 and "<title>Sunday</title>" in page
        status, envjs = k.call(proxy, "/env.js")
        assert status == 200 and "window.ENV" in envjs

        # Through nginx to the backend, which reaches PostgreSQL and Redis.
        status, body = k.call(proxy, "/api/info")
        assert status == 200, body
        info = json.loads(body)
        assert info["environment"] == "full-env" and info["replica"] == "0"
        assert json.loads(k.call(proxy, "/api/info")[1])["visits"] == info["visits"] + 1
        status, body = k.call(proxy, "/api/items", "POST", {"name": "first"})
        assert status == 201, body
        status, body = k.call(proxy, "/api/items")
        assert status == 200 and [i["name"] for i in json.loads(body)] == ["first"]
        status, body = k.call(env.ports["service/backend/0"], "/health")
        health = json.loads(body)
        assert status == 200 and health["postgres"] == "ok" and health["redis"] == "ok"

        k.wait_for(lambda: _targets_up(env.ports["prometheus"]), what="prometheus target up")

        # A monitoring change is reloaded into the running Prometheus, not restarted.
        prom_pid = k.program_pid(env, "prometheus")
        changed = k.monitoring(env)
        jobs = [*changed.spec["jobs"], {**changed.spec["jobs"][0], "name": "backend-again"}]
        changed = dataclasses.replace(changed, spec={**changed.spec, "jobs": jobs})
        env.target.apply(env.ctx, "update", changed)
        assert "backend-again" in k.call(env.ports["prometheus"], "/api/v1/status/config")[1]
        assert k.program_pid(env, "prometheus") == prom_pid
        resources[-1] = changed

        desired = DesiredEnvironment("full-env", "sunday", "local", tuple(resources))
        urls = {e.name: e for e in env.target.endpoints(env.ctx, desired)}
        assert urls["frontend"].url == f"http://127.0.0.1:{proxy}/"
        assert urls["api"].url == f"http://127.0.0.1:{proxy}/api/health"  # answers
        assert urls["postgres"].url == (
            f"postgresql://app:***@127.0.0.1:{env.ports['postgres']}/sunday_dev"
        )
        assert (
            urls["postgres"].secret_url is not None and "pg-S3cret" in urls["postgres"].secret_url
        )
        assert "***" in urls["redis"].url and "secret" not in urls["redis"].url
        statuses = env.target.services(env.ctx, desired)
        assert [(s.name, s.ready, s.desired) for s in statuses] == [("backend", 1, 1)]

        # A dependency down: the backend says which, and the service counts as not ready.
        env.target.delete(env.ctx, k.redis(env))
        status, body = k.call(env.ports["service/backend/0"], "/health")
        assert status == 503 and json.loads(body)["redis"].startswith("down")
        assert env.target.services(env.ctx, desired)[0].ready == 0
        env.target.apply(env.ctx, "create", k.redis(env))
        assert env.target.services(env.ctx, desired)[0].ready == 1

        # Secrets live only in 0600 files of the run user, never in supervisord's config.
        conf_d = env.env_dir / "etc" / "supervisor.d"
        assert all("S3cret" not in p.read_text() for p in conf_d.glob("*.conf"))
        spec = env.env_dir / "run" / "programs" / "svc-backend-0.json"
        assert spec.stat().st_mode & 0o777 == 0o600
        assert (env.env_dir / "etc" / "redis.conf").stat().st_mode & 0o777 == 0o600

        # Re-applying an environment that is as desired changes nothing and restarts nothing.
        pids = {p: k.program_pid(env, p) for p in ("postgres", "redis", "svc-backend-0", "nginx")}
        t0 = time.monotonic()
        for res in resources:
            env.target.apply(env.ctx, "update", res)
        print(f"re-apply of an unchanged environment: {time.monotonic() - t0:.3f}s")
        assert {p: k.program_pid(env, p) for p in pids} == pids

        for res in reversed(resources):
            env.target.delete(env.ctx, res)
            assert not env.target.observe(env.ctx, res).exists, res.key
        env.target.teardown(env.ctx)
        assert env.target.leftovers(env.ctx, env.ports) == []
        env.target.teardown(env.ctx)  # idempotent
