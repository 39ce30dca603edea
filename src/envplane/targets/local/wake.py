"""Sleep and wake on this machine: every program of an environment stopped (its supervisord,
data directories and ports stay), and started again all at once.

Wake asks supervisord to start every stopped program in one XML-RPC multicall, without waiting
for any, except the front door's (nginx): its port is held by the stand-in that answers while
the environment sleeps, so `handover` lets go of it right before nginx is started - the gap is
nginx's own start. Every resource is observed, each in its own thread from the start (nginx's
once nginx is started) as soon as its ports accept, until it is healthy: what `observe` checks
(the program runs and is not looping, its ports are ours, its probe answers, nothing changed
behind envplane's back) is what a wake guarantees. A backend started before its database
answers 503 on /health until it does, and is simply observed again.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import FrontDoor, Observed
from envplane.targets.local import nginxconf, procs, programs, supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import daemon
from envplane.targets.local.kinds import proxy as proxy_kind

READY_TIMEOUT = programs.READY_TIMEOUT
POLL = 0.02
STARTABLE = ("STOPPED", "EXITED", "FATAL")  # supervisord starts these again on request
# Said by observe of a program that will not come up by waiting longer.
HOPELESS = ("fatal", "restarting in a loop", "is held by")
LISTEN_POLL = 0.005
# How often a resource whose ports do not accept yet is observed all the same (to see one that
# gave up): an observe costs CPU the starting programs need, and a backend takes about 1 s.
LOOK = 1.0


def _hopeless(seen: Observed) -> bool:
    return any(word in seen.detail for word in HOPELESS)


Observe = Callable[[Resource], Observed]
Ports = Callable[[Resource], list[int]]


def front_door(env: LocalEnv) -> FrontDoor:
    port = env.ctx.ports.get("proxy")
    return FrontDoor(
        port=None if port is None else int(port),
        run_dir=env.layout.run,
        access_log=nginxconf.access_log(env.layout),
        environ={supd.MARKER: str(env.layout.env_dir)},
    )


def stop_all(env: LocalEnv) -> list[str]:
    """Stop every program supervisord runs, all at once (it waits for each to exit)."""
    if not supd.answering(env.layout):
        return []
    rpc = supd.client(env.layout)
    with env.lock():
        running = [
            str(p["name"])
            for p in rpc.supervisor.getAllProcessInfo()
            if p["statename"] in ("RUNNING", "STARTING", "BACKOFF")
        ]
        rpc.supervisor.stopAllProcesses()
    return sorted(running)


def start_all(
    env: LocalEnv,
    desired: DesiredEnvironment,
    handover: Callable[[], None],
    observe: Observe,
    ports_of: Ports,
) -> list[str]:
    layout = env.layout
    if not supd.answering(layout):
        # After a reboot or a killed supervisord, it comes back first (its config is kept).
        daemon.apply(env, "create", Resource("supervisor", "supervisor", {}))
    rpc = supd.client(layout)
    inner = [r for r in desired.resources if r.kind != "proxy"]
    # Someone else on one of the environment's ports: refuse before anything is started.
    # (A bind test per port first: reading who holds one is slow, and only needed when one is.)
    taken = [p for r in inner for p in ports_of(r) if not procs.port_free(p)]
    held = programs.held_ports(env, taken) if taken else []
    if held:
        raise programs.PortInUse(
            "; ".join(held),
            hint="stop that process or free the port, then wake again; or destroy and "
            "re-create the environment to get new ports",
        )
    with env.lock():
        states = {str(p["name"]): str(p["statename"]) for p in rpc.supervisor.getAllProcessInfo()}
        stopped = sorted(name for name, state in states.items() if state in STARTABLE)
        _start(rpc, [name for name in stopped if name != proxy_kind.PROGRAM])
    _warm_imports()  # after the start: its CPU is not in the way of supervisord's spawns
    deadline = time.monotonic() + READY_TIMEOUT
    front = [r for r in desired.resources if r.kind == "proxy"]
    gave_up = threading.Event()

    def healthy(res: Resource) -> Observed:
        return _healthy(res, observe, ports_of, deadline, gave_up)

    with ThreadPoolExecutor(max_workers=max(1, len(desired.resources))) as pool:
        try:
            # Each resource is observed as soon as its own ports accept, while the slower ones
            # (the backends' imports) still start: only they and nginx are left at the end.
            waits = [(res, pool.submit(healthy, res)) for res in inner]
            if proxy_kind.PROGRAM in stopped:
                # The doorman answers "waking up" while the others start (the CPU-heavy part
                # of a wake): nginx then starts on a quieter machine, so the port is refused
                # for less time, and behind it the backends already listen.
                _until_listening([p for r in inner for p in ports_of(r)], deadline)
            with env.lock():
                # The front door's gap is from here to nginx listening: nothing else between.
                # Someone else taking the port meanwhile is what observe then reports.
                handover()
                if proxy_kind.PROGRAM in stopped:
                    _start(rpc, [proxy_kind.PROGRAM])
            waits += [(res, pool.submit(healthy, res)) for res in front]
            seen = {res.key: wait.result() for res, wait in waits}
        except BaseException:
            gave_up.set()  # the error is what the wake says: its threads stop waiting
            raise
    _refuse_sick(env.ctx.name, [(res, seen[res.key]) for res in desired.resources])
    return stopped


def _warm_imports() -> None:
    """psycopg and redis take a while to import, and the first observe of postgres and redis
    needs them: let that overlap with the programs starting."""
    for name in ("psycopg", "redis"):
        threading.Thread(target=importlib.import_module, args=(name,), daemon=True).start()


def _start(rpc: Any, names: list[str]) -> None:
    """Start `names` in one round trip, none waited for (`_healthy` follows)."""
    if not names:
        return
    # supervisord's system.multicall answers each call's value, or a fault as a dict.
    calls = [{"methodName": "supervisor.startProcess", "params": [n, False]} for n in names]
    results = rpc.system.multicall(calls)
    for name, result in zip(names, results, strict=True):
        code = result.get("faultCode") if isinstance(result, dict) else None
        if code is not None and code not in (
            supd.ALREADY_STARTED,
            supd.SPAWN_ERROR,  # observe says why, with the program's log
            supd.ABNORMAL_TERMINATION,
        ):
            raise OperationFailed(
                f"supervisord could not start {name}: {result.get('faultString', code)}"
            )


def _until_listening(ports: list[int], deadline: float) -> None:
    """Until every port accepts a connection, or the deadline (then observe says why)."""
    waiting = set(ports)
    while waiting and time.monotonic() < deadline:
        waiting = {port for port in waiting if not _accepts(port)}
        if waiting:
            time.sleep(LISTEN_POLL)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _healthy(
    res: Resource, observe: Observe, ports_of: Ports, deadline: float, gave_up: threading.Event
) -> Observed:
    """A cheap wait until the resource's ports accept connections (to observe it over and
    over meanwhile would take the CPU the starting programs need; it is observed every LOOK
    s all the same, to see one that gave up), then observed until healthy - what observe
    checks is what the wake guarantees. Until the deadline, or until the wake gave up."""
    waiting = set(ports_of(res))
    looked = time.monotonic()
    while waiting and time.monotonic() < deadline and not gave_up.is_set():
        waiting = {port for port in waiting if not _accepts(port)}
        if waiting and time.monotonic() - looked > LOOK:
            looked = time.monotonic()
            seen = observe(res)
            if seen.healthy or _hopeless(seen):
                return seen  # healthy: its ports accepted meanwhile, nothing to wait for
        if waiting:
            gave_up.wait(LISTEN_POLL)
    while True:
        seen = observe(res)
        if seen.healthy or _hopeless(seen) or time.monotonic() > deadline or gave_up.is_set():
            return seen
        gave_up.wait(POLL)


def _refuse_sick(name: str, seen: list[tuple[Resource, Observed]]) -> None:
    sick = [(res, s) for res, s in seen if not s.healthy]
    if sick:
        what = "; ".join(f"{res.key}: {s.detail or 'not healthy'}" for res, s in sick)
        raise OperationFailed(
            f"not healthy after the wake: {what}",
            hint=f"`envplane update {name}` repairs it (it restarts what is not right); "
            "the programs' logs are under the environment's log/",
        )
