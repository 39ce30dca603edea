"""Redis configuration drift: the running server's CONFIG GET against what envplane started it
with, and putting it back.

Redis has no "default value" query, so what envplane configures is taken from the server
itself right after it was (re)started from envplane's redis.conf: its CONFIG GET * then is the
baseline, kept beside redis.conf (`redis.settings.json`, no secret in it). A CONFIG SET behind
envplane's back is any parameter that differs from it; `settle` sets it back without a restart
(a restart would lose what was written since the last RDB save)."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write

BASELINE = "redis.settings.json"
# Values that are secrets: compared, never stored in the baseline, never shown.
SECRET_PARAMS = frozenset({"requirepass", "masterauth"})


def running(client: Any) -> dict[str, str]:
    """Every configuration parameter of the running server (CONFIG GET *), secrets left out."""
    raw: Mapping[Any, Any] = client.config_get("*")
    out = {_text(k): _text(v) for k, v in raw.items()}
    return {k: v for k, v in out.items() if k not in SECRET_PARAMS}


def config_get_all(port: int, password: str, timeout: float = 2.0) -> dict[str, str]:
    """CONFIG GET * over a plain socket (RESP), secrets left out: the drift report's read,
    without importing the redis client (a fifth of the command's time). OSError when the
    server does not answer or refuses."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_command("AUTH", password) + _command("CONFIG", "GET", "*"))
        reader = sock.makefile("rb")
        _reply(reader)  # +OK, or an error raised as OSError
        raw = _reply(reader)
    if not isinstance(raw, list):
        raise OSError("CONFIG GET * did not answer with a list")
    pairs = dict(zip(raw[::2], raw[1::2], strict=True))
    return {_text(k): _text(v) for k, v in pairs.items() if _text(k) not in SECRET_PARAMS}


def _command(*parts: str) -> bytes:
    encoded = [p.encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def _reply(reader: Any) -> Any:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise OSError(rest.decode(errors="replace"))
    if kind in (b"+", b":"):
        return rest
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2]
    if kind == b"*":
        return [_reply(reader) for _ in range(max(int(rest), 0))]
    raise OSError(f"unexpected redis reply {line[:40]!r}")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def baseline(env: LocalEnv) -> dict[str, str] | None:
    """What the server ran with when envplane last started it; None before one was taken."""
    try:
        data = json.loads((env.layout.etc / BASELINE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def differences(
    expected: Mapping[str, str], actual: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(parameter, expected, actual) for each parameter whose value is not the baseline's."""
    return [
        (name, expected[name], actual.get(name, "(absent)"))
        for name in sorted(expected)
        if actual.get(name) != expected[name]
    ]


def settle(env: LocalEnv, client: Any, *, fresh: bool) -> list[str]:
    """After apply: a server `fresh` from redis.conf gives the baseline; otherwise every
    parameter someone changed is set back to it. Returns the parameters set back."""
    expected = baseline(env)
    if fresh or expected is None:
        text = json.dumps(running(client), indent=1, sort_keys=True)
        atomic_write(env.layout.etc / BASELINE, text, mode=0o600, user=env.user)
        return []
    import redis

    fixed = []
    for name, value, _actual in differences(expected, running(client)):
        try:
            client.config_set(name, value)
        except redis.RedisError:
            continue  # one the server refuses stays reported as drift
        fixed.append(name)
    return fixed
