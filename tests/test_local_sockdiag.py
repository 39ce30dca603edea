"""Who listens on a port: the kernel's sock_diag answer is the one /proc/net/tcp gives."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from envplane.targets.local import procs, sockdiag


def _from_proc(port: int, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    with monkeypatch.context() as patched:
        patched.setattr(sockdiag, "listening", lambda: None)  # as where netlink is refused
        return procs.listening_inodes(port)


def _inode(sock: socket.socket) -> str:
    return os.readlink(f"/proc/self/fd/{sock.fileno()}").removeprefix("socket:[").rstrip("]")


@pytest.fixture
def listeners() -> Iterator[dict[str, socket.socket]]:
    made: dict[str, socket.socket] = {}
    try:
        for name, family, address in (
            ("loopback", socket.AF_INET, "127.0.0.1"),
            ("elsewhere", socket.AF_INET, "127.0.0.2"),
            ("wildcard6", socket.AF_INET6, "::"),
            ("loopback6", socket.AF_INET6, "::1"),
        ):
            sock = socket.socket(family, socket.SOCK_STREAM)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((address, 0))
            sock.listen()
            made[name] = sock
        yield made
    finally:
        for sock in made.values():
            sock.close()


def test_listeners_that_clash_with_loopback_are_found_as_proc_lists_them(
    listeners: dict[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sockdiag.listening() is not None, "sock_diag answers on this machine"
    for name, sock in listeners.items():
        port = sock.getsockname()[1]
        found = procs.listening_inodes(port)
        assert found == _from_proc(port, monkeypatch), name
        clashes = name in ("loopback", "wildcard6")  # 127.0.0.2 and ::1 leave 127.0.0.1 free
        assert found == ({_inode(sock)} if clashes else set()), name
    closed = listeners["loopback"].getsockname()[1]
    listeners["loopback"].close()
    assert procs.listening_inodes(closed) == set()


def test_a_connection_is_not_a_listener(listeners: dict[str, socket.socket]) -> None:
    server = listeners["loopback"]
    port = server.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as client:
        accepted, _peer = server.accept()
        with accepted:
            local = client.getsockname()[1]
            assert procs.listening_inodes(local) == set()  # the client's end: established
            assert procs.listening_inodes(port) == {_inode(server)}
