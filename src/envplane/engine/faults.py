"""The one fault-injection hook of the crash tests: SIGKILL this process right after the Nth
journaled step (of any operation kind, or backup component) finished in it."""

from __future__ import annotations

import os
import signal
import threading

FAULT_ENV = "ENVPLANE_FAULT_KILL_AFTER_STEP"

_lock = threading.Lock()
_finished = 0


def step_finished() -> None:
    """Count one finished step; die here if the test asked for it. Called with the journal's
    lock held, so nothing else lands after the step that was the last one."""
    global _finished
    kill_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    if not kill_after:
        return
    with _lock:
        _finished += 1
        if _finished == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
