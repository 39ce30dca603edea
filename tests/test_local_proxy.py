"""nginx as the traffic switch: upstream changes take effect with no failed request, and a bad
server block is refused before anything starts."""

from __future__ import annotations

import threading
import time

import pytest

from envplane.errors import BadInput
from envplane.targets.local.procs import port_accepts
from tests import localkit as k

pytestmark = pytest.mark.slow


def test_upstream_switch_has_no_failed_requests() -> None:
    with k.local_env("switch-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.echo_service(env, replicas=2))
        blue, green = env.ports["service/backend/0"], env.ports["service/backend/1"]
        env.target.apply(env.ctx, "create", k.proxy(env, [blue]))
        proxy = env.ports["proxy"]
        assert k.call(proxy, "/api/x")[1] == "replica=0 msg=hello"

        results: list[tuple[int, str]] = []
        stop = threading.Event()

        def hammer() -> None:
            deadline = time.monotonic() + 15  # bounded, whatever happens
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    results.append(k.call(proxy, "/api/x", timeout=2))
                except OSError as exc:
                    results.append((0, repr(exc)))

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.2)
        env.target.apply(env.ctx, "update", k.proxy(env, [green]))
        # The switch is complete when apply returns: no old worker answers any more.
        after = [k.call(proxy, "/api/x")[1] for _ in range(20)]
        time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join()

        failed = [r for r in results if r[0] != 200]
        assert not failed, failed[:5]
        assert len(results) > 20
        assert set(after) == {"replica=1 msg=hello"}
        assert {body for _s, body in results} <= {"replica=0 msg=hello", "replica=1 msg=hello"}


def test_bad_server_block_is_refused_before_anything_starts() -> None:
    with k.local_env("nginx-bad") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        block = (
            f"server {{\n    listen 127.0.0.1:{env.ports['proxy']};\n    bogus_directive on;\n}}\n"
        )
        with pytest.raises(BadInput) as err:
            env.target.apply(env.ctx, "create", k.proxy(env, server_conf=block))
        message = str(err.value)
        assert "nginx.conf.candidate" in message and "bogus_directive" in message
        assert not env.target.observe(env.ctx, k.proxy(env)).exists
        assert not port_accepts(env.ports["proxy"])


def test_bad_server_block_leaves_the_running_proxy_alone() -> None:
    with k.local_env("nginx-keep") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.echo_service(env))
        env.target.apply(env.ctx, "create", k.proxy(env))
        pid = k.program_pid(env, "nginx")
        block = "server { listen 127.0.0.1:1; location / { proxy_pass http://nowhere_x/; } }"
        with pytest.raises(BadInput):
            env.target.apply(env.ctx, "update", k.proxy(env, server_conf=block))
        assert k.program_pid(env, "nginx") == pid
        assert k.call(env.ports["proxy"], "/api/x")[0] == 200
