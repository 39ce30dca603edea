"""A bounded HTTP load generator for tests: steady traffic while a deploy, promote or rollback
runs, and an account afterwards of what the clients saw.

    with Load("http://127.0.0.1:PORT/api/info", rate=250, max_seconds=60) as load:
        ...  # change something while the load runs
    report = load.report()
    assert report.failed_5xx == 0 and report.errors == 0, report.failures()[:5]
    assert report.downtime() < 0.5

Worker threads share one schedule paced to `rate` requests per second in total, each over its
own keep-alive http.client connection (a new one after any error). The load always ends: at
`max_requests`, at `max_seconds`, or when the `with` block is left, whichever comes first, and no
request waits longer than `timeout`. Every response is recorded with its monotonic time, its
status (0 for a connection error or a timeout) and the "version" field of its JSON body.

A request that fails on a reused keep-alive connection before any byte of a response arrived
(the server closed the idle connection: nginx does on every reload) is sent once more on a new
connection, as HTTP clients do for idempotent requests; `Report.stale_retries` counts those.
Stdlib only.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from types import TracebackType

# Late by more than this, a worker skips the missed slots instead of bursting to catch up.
MAX_CATCH_UP = 0.05
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class _Connection(http.client.HTTPConnection):
    """No Nagle delay: a small request is never held back waiting for an ACK."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class Result:
    t: float  # time.monotonic() when the response (or the error) came
    status: int  # the HTTP status, 0 for a connection error or a timeout
    version: str | None  # the "version" field of a JSON object body


@dataclass(frozen=True)
class Report:
    started: float  # time.monotonic() when the load began
    ended: float  # ... and when its last request was done
    total: int
    ok: int  # 2xx
    failed_5xx: int
    errors: int  # connection errors and timeouts
    other: int  # any other status (1xx, 3xx, 4xx)
    rate: float  # achieved requests per second
    by_version: dict[str, int]  # 2xx responses per version; "" for a body without one
    stale_retries: int
    results: list[Result] = field(repr=False)

    def failures(self, since: float | None = None, until: float | None = None) -> list[Result]:
        """5xx responses and errors, optionally only those within [since, until] (monotonic)."""
        low = self.started if since is None else since
        high = self.ended if until is None else until
        return [
            r for r in self.results if (r.status == 0 or r.status >= 500) and low <= r.t <= high
        ]

    def downtime(self) -> float:
        """The longest interval with no successful response while the load ran, in seconds."""
        last, longest = self.started, 0.0
        for r in self.results:
            if 200 <= r.status < 300:
                longest = max(longest, r.t - last)
                last = r.t
        return max(longest, self.ended - last)


class Load:
    def __init__(
        self,
        url: str,
        *,
        rate: float = 250,
        max_seconds: float = 60,
        max_requests: int = 20_000,
        workers: int = 8,
        timeout: float = 5,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// URL is needed, not {url!r}")
        if rate <= 0 or max_seconds <= 0 or max_requests < 1 or workers < 1 or timeout <= 0:
            raise ValueError("rate, max_seconds, max_requests, workers, timeout must be positive")
        self.host, self.port = parts.hostname, parts.port or 80
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.rate, self.max_seconds, self.max_requests = rate, max_seconds, max_requests
        self.timeout = timeout
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._results: list[Result] = []
        self._issued = 0
        self._next_at = 0.0
        self._deadline = 0.0
        self._stale_retries = 0
        self.started = 0.0
        self.ended = 0.0

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("this load has already been started")
        self.started = self._next_at = time.monotonic()
        self._deadline = self.started + self.max_seconds
        self._threads = [
            threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            for i in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    def wait(self) -> None:
        """Until the load ends by itself (max_requests or max_seconds)."""
        for thread in self._threads:
            thread.join()
        self._finish()

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def report(self) -> Report:
        with self._lock:
            results = sorted(self._results, key=lambda r: r.t)
            stale = self._stale_retries
        ended = self.ended or time.monotonic()
        ok = failed = errors = 0
        by_version: dict[str, int] = {}
        for r in results:
            if 200 <= r.status < 300:
                ok += 1
                key = r.version or ""
                by_version[key] = by_version.get(key, 0) + 1
            elif r.status == 0:
                errors += 1
            elif r.status >= 500:
                failed += 1
        elapsed = max(ended - self.started, 1e-9)
        return Report(
            started=self.started,
            ended=ended,
            total=len(results),
            ok=ok,
            failed_5xx=failed,
            errors=errors,
            other=len(results) - ok - failed - errors,
            rate=len(results) / elapsed,
            by_version=by_version,
            stale_retries=stale,
            results=results,
        )

    def _finish(self) -> None:
        if not self.ended:
            with self._lock:
                last = max((r.t for r in self._results), default=time.monotonic())
            self.ended = min(max(last, self.started), time.monotonic())

    def _slot(self) -> float | None:
        """When this worker's next request is due, or None when the load is over."""
        with self._lock:
            if self._issued >= self.max_requests:
                return None
            at = max(self._next_at, time.monotonic() - MAX_CATCH_UP)
            if at >= self._deadline:
                return None
            self._issued += 1
            self._next_at = at + 1 / self.rate
            return at

    def _work(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            at = self._slot()
            if at is None:
                break
            delay = at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            reused = conn is not None
            if conn is None:
                conn = _Connection(self.host, self.port, timeout=self.timeout)
            try:
                try:
                    status, body, close = self._request(conn)
                except STALE:
                    if not reused:
                        raise
                    conn.close()
                    with self._lock:
                        self._stale_retries += 1
                    status, body, close = self._request(conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                self._record(Result(time.monotonic(), 0, None))
                continue
            if close:
                conn.close()
                conn = None
            self._record(Result(time.monotonic(), status, _version(body)))
        if conn is not None:
            conn.close()

    def _request(self, conn: http.client.HTTPConnection) -> tuple[int, bytes, bool]:
        conn.request("GET", self.target, headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
        return response.status, body, response.will_close

    def _record(self, result: Result) -> None:
        with self._lock:
            self._results.append(result)


def _version(body: bytes) -> str | None:
    if not body.startswith(b"{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None
