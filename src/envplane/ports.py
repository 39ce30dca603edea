"""Loopback port allocation for local environments, kept apart from other environments' ports."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable
from pathlib import Path


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Below the kernel's ephemeral range: a port handed out there may be taken, between the
# allocation and the server's bind, by any outgoing connection of this machine (its source
# port) - a create then failed with "port in use" on a busy machine. Ports below it are only
# ever taken by something binding them on purpose.
_FIRST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _candidates() -> range:
    """The ports allocation draws from: from 20000 to just below the ephemeral range."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(_FIRST, low) if low - _FIRST >= 1000 else range(0)


def allocate(keys: Iterable[str], taken: Iterable[int]) -> dict[str, int]:
    """A free 127.0.0.1 port for each key, none of them in `taken` (other environments' ports).

    Ports are drawn at random below the ephemeral range (above), each kept bound while the
    others are drawn so no two keys get the same one; we keep only ones no other environment
    has recorded, so a stopped environment's ports are not handed out twice. Where that range
    is too small, the kernel picks (ephemeral ports).
    """
    avoid = set(taken)
    pool = _candidates()
    draw = random.SystemRandom()
    result: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for key in keys:
            for _attempt in range(200):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind(("127.0.0.1", draw.choice(pool) if pool else 0))
                except OSError:  # in use: draw again
                    sock.close()
                    continue
                port = int(sock.getsockname()[1])
                if port in avoid:
                    sock.close()
                    continue
                held.append(sock)  # keep it bound so the next key gets a different port
                avoid.add(port)
                result[key] = port
                break
            else:  # pragma: no cover - would need 200 collisions in a row
                raise RuntimeError("could not find a free loopback port")
    finally:
        for sock in held:
            sock.close()
    return result
