"""SCRAM-SHA-256 verifiers computed here, so a clear password never travels in SQL text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def verifier(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def matches(stored: str | None, password: str) -> bool:
    """Whether a stored pg_authid.rolpassword verifier accepts `password`."""
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    try:
        params, _keys = stored[len("SCRAM-SHA-256$") :].split("$", 1)
        iterations, salt = params.split(":", 1)
        expected = verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, stored)


def usable(password: str) -> bool:
    """Client-side hashing matches the server only where SASLprep is a no-op: printable ASCII."""
    return password.isascii() and password.isprintable()
