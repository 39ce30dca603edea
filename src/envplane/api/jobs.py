"""Long operations in worker threads: each job gets a Workspace of its own whose event sink
is the job's buffer, so `GET /operations/{id}/events` can stream its progress while it runs.

A request that starts a job waits until the job's first operation has started (its lock is
taken and its journal line written: the operation id exists) or until the job has ended,
whichever comes first. So a `202` is honest: the operation holds its lock; a refusal (a held
lock, bad input, a closed gate) is the error the CLI would print, not a `202` followed by a
failure. Only a job whose preparations take longer than START_WAIT answers `202` before it
has an operation id (its job id still finds it).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from envplane.errors import EnvplaneError, OperationFailed
from envplane.events import Event, OperationStarted

if TYPE_CHECKING:
    from envplane.api.metrics import Metrics
    from envplane.api.problems import Problem
    from envplane.workspace import Workspace

START_WAIT = 30.0
MAX_EVENTS = 20_000  # per job; a job that logs more keeps its first and its newest
KEEP_DONE = 500  # finished jobs kept in memory (their journal stays in the store)
JobState = Literal["running", "succeeded", "failed"]


@dataclass
class Job:
    id: str
    kind: str
    environment: str | None
    actor: str
    state: JobState = "running"
    state_pending: JobState = "running"  # the state it is ending in (on_done reads it)
    operation_ids: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    result: Any = None
    error: EnvplaneError | None = None
    problem: Problem | None = None
    started: float = field(default_factory=time.monotonic)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: Event) -> None:
        with self.changed:
            if isinstance(event, OperationStarted) and event.operation_id not in self.operation_ids:
                self.operation_ids.append(event.operation_id)
            if len(self.events) >= MAX_EVENTS:
                del self.events[MAX_EVENTS // 2]
                self.dropped += 1
            self.events.append(asdict(event))
            self.changed.notify_all()

    def events_since(self, index: int) -> tuple[list[dict[str, Any]], bool]:
        """(the events after the first `index`, whether the job has ended)."""
        with self.changed:
            return self.events[index:], self.state != "running"


class Jobs:
    def __init__(self, workers: int, metrics: Metrics) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envplane-job")
        self._metrics = metrics
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._counter = itertools.count(1)

    def submit(
        self,
        make_ws: Callable[[Callable[[Event], None]], Workspace],
        kind: str,
        environment: str | None,
        actor: str,
        work: Callable[[Workspace], Any],
        *,
        on_done: Callable[[Job], None] | None = None,
    ) -> Job:
        job = Job(f"job-{uuid.uuid4().hex[:12]}", kind, environment, actor)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._pool.submit(self._run, job, make_ws, work, on_done)
        return job

    def _run(
        self,
        job: Job,
        make_ws: Callable[[Callable[[Event], None]], Workspace],
        work: Callable[[Workspace], Any],
        on_done: Callable[[Job], None] | None,
    ) -> None:
        from envplane.api.problems import Problem, problem_of

        def sink(event: Event) -> None:
            self._metrics.observe_event(event)
            job.add(event)

        ws = make_ws(sink)
        state: JobState = "succeeded"
        try:
            result = work(ws)
            job.result = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        except EnvplaneError as exc:
            state = "failed"
            job.error, job.problem = exc, problem_of(exc)
        except Exception as exc:  # a bug: the job says so, the server goes on
            state = "failed"
            job.problem = Problem(
                type="urn:envplane:internal",
                title="Internal error",
                status=500,
                detail=f"internal error ({type(exc).__name__}); the server's log has details",
            )
            logging.getLogger("envplane.api").error("job %s failed", job.id, exc_info=exc)
        finally:
            ws.close()
            job.state_pending = state
            if on_done is not None:
                try:
                    on_done(job)
                except Exception as exc:  # the audit write failed: the job still ends
                    logging.getLogger("envplane.api").error("job %s: %s", job.id, exc)
            with job.changed:
                job.state = state
                job.changed.notify_all()

    def wait_started(self, job: Job, timeout: float = START_WAIT) -> None:
        """Until the job's first operation started or the job ended (or `timeout`)."""
        deadline = time.monotonic() + timeout
        with job.changed:
            while job.state == "running" and not job.operation_ids:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                job.changed.wait(left)

    def get(self, ref: str) -> Job | None:
        """The job with this job id, or the one that ran this operation id."""
        with self._lock:
            job = self._jobs.get(ref)
            if job is not None:
                return job
            for candidate in reversed(self._jobs.values()):
                if ref in candidate.operation_ids:
                    return candidate
        return None

    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == "running")

    def _forget_old(self) -> None:
        done = [k for k, j in self._jobs.items() if j.state != "running"]
        for key in done[: max(0, len(done) - KEEP_DONE)]:
            del self._jobs[key]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def failed_before_start(job: Job) -> EnvplaneError | None:
    """The error to answer with when the job ended before any operation began (a refusal):
    an operation that failed after it started is a result (its journal says so)."""
    refused = job.state == "failed" and not job.operation_ids
    if refused and job.error is not None and not isinstance(job.error, OperationFailed):
        return job.error
    return None
