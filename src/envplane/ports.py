"""Loopback port allocation for local environments, kept apart from other environments' ports."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate(keys: Iterable[str], taken: Iterable[int]) -> dict[str, int]:
    """A free 127.0.0.1 port for each key, none of them in `taken` (other environments' ports).

    The kernel picks ephemeral ports; we only keep ones no other environment has recorded, so a
    stopped environment's ports are not handed out twice.
    """
    avoid = set(taken)
    result: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for key in keys:
            for _attempt in range(50):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
                if port in avoid:
                    sock.close()
                    continue
                held.append(sock)  # keep it bound so the next key gets a different port
                avoid.add(port)
                result[key] = port
                break
            else:  # pragma: no cover - would need 50 collisions in a row
                raise RuntimeError("could not find a free loopback port")
    finally:
        for sock in held:
            sock.close()
    return result
