"""Dashboard sessions and the sign-in throttle, in the server's memory.

A session is what `POST /session` hands out after a token or a password was checked: a random
id in an HttpOnly, SameSite=Strict cookie (the server keeps only its sha256, so a memory dump
holds no usable cookie) and a CSRF token that every change made with the cookie must send back
in `X-CSRF-Token`. Sessions end with `DELETE /session`, after 12 hours, or when the server
restarts (sign in again). The identity behind a session is checked again on every request: a
revoked token or user ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "envplane_session"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME = 12 * 3600.0


@dataclass(frozen=True)
class Session:
    kind: str  # the identity's kind and name: token | user
    name: str
    csrf: str
    expires: float  # time.monotonic()


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    def __init__(self, lifetime: float = LIFETIME) -> None:
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._by_key: dict[str, Session] = {}

    def open(self, kind: str, name: str) -> tuple[str, Session]:
        """A new session: (the cookie's value, the session with its CSRF token)."""
        cookie = secrets.token_urlsafe(32)
        session = Session(kind, name, secrets.token_urlsafe(32), time.monotonic() + self._lifetime)
        with self._lock:
            self._expire()
            self._by_key[_key(cookie)] = session
        return cookie, session

    def get(self, cookie: str) -> Session | None:
        with self._lock:
            session = self._by_key.get(_key(cookie))
            if session is not None and session.expires <= time.monotonic():
                del self._by_key[_key(cookie)]
                return None
            return session

    def close(self, cookie: str) -> bool:
        with self._lock:
            return self._by_key.pop(_key(cookie), None) is not None

    def _expire(self) -> None:
        moment = time.monotonic()
        for key in [k for k, s in self._by_key.items() if s.expires <= moment]:
            del self._by_key[key]


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())


class Throttle:
    """Failed sign-ins per source address: the first FREE are free (typos), then each next
    attempt must wait base * 2^(n - FREE - 1) seconds after the last failure, at most
    `ceiling`; a success clears the address. Bounded memory: at most MAX_SOURCES addresses
    are tracked (the oldest are forgotten first)."""

    FREE = 3
    MAX_SOURCES = 10_000

    def __init__(self, base: float = 1.0, ceiling: float = 60.0) -> None:
        self.base, self.ceiling = base, ceiling
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # source -> (count, last failure)

    def wait_for(self, source: str) -> float:
        """Seconds `source` must still wait before its next attempt (0: it may try now)."""
        with self._lock:
            count, last = self._failures.get(source, (0, 0.0))
        if count < self.FREE:
            return 0.0
        delay: float = min(self.base * 2.0 ** (count - self.FREE), self.ceiling)
        return max(0.0, last + delay - time.monotonic())

    def failed(self, source: str) -> int:
        with self._lock:
            count = self._failures.pop(source, (0, 0.0))[0] + 1
            self._failures[source] = (count, time.monotonic())
            while len(self._failures) > self.MAX_SOURCES:
                del self._failures[next(iter(self._failures))]
            return count

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._failures.pop(source, None)
