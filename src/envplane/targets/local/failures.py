"""Failures of the systems the local driver runs (a refused socket, a supervisord fault, a
failed program, a psycopg or redis error) as one clear OperationFailed, not a traceback.

Shared by the driver and its data operations; anything else raised is a bug and passes."""

from __future__ import annotations

import subprocess
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager

from envplane.errors import EnvplaneError, OperationFailed
from envplane.render.model import Resource

EXTERNAL_ERRORS = (OSError, xmlrpc.client.Error, subprocess.SubprocessError)


@contextmanager
def plain_errors(res: Resource, doing: str) -> Iterator[None]:
    try:
        yield
    except EnvplaneError:
        raise
    except Exception as exc:
        library = type(exc).__module__.split(".")[0]
        if not isinstance(exc, EXTERNAL_ERRORS) and library not in ("psycopg", "redis"):
            raise  # a bug: let the CLI's handler report it as one
        detail = exc.faultString if isinstance(exc, xmlrpc.client.Fault) else str(exc)
        raise OperationFailed(
            f"{doing} {res.key} failed: {type(exc).__name__}: {detail}",
            hint="see the logs in the environment's log/ directory; fix the cause, then retry",
        ) from exc
