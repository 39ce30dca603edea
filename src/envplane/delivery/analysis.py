"""Traffic analysis of a canary: nginx's JSON access log, per upstream port, judged by thresholds.

nginx writes one JSON object per line (the `envplane_json` log_format):

    {"t":$msec,"status":$status,"upstream":"$upstream_addr","upstream_status":"$upstream_status",
     "upstream_time":"$upstream_response_time","request_time":$request_time,"uri":"$uri"}

Each replica is a process on its own 127.0.0.1 port, so the port of an upstream address names
the replica, and through it the version. One request can try several upstreams (nginx retries
the next server: "127.0.0.1:1, 127.0.0.1:2", and " : " separates upstream groups after an
internal redirect); the status and time lists hold the same positions. Every try is one `Hit`:
a try that failed and was retried elsewhere is no failure for the client but it is one of the
upstream tried, and that is what a canary is judged on. Requests nginx answered itself (no
upstream) are no hits.

`read_hits` is incremental: it reads from a byte offset to the last complete line and returns the
offset to continue from, so a poller reads each line once however fast the log grows.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

# A larger tail is read in several calls: one call never holds more than this in memory.
MAX_READ_BYTES = 8 * 1024 * 1024
_GROUPS = " : "  # between upstream groups, in all three lists
_TRIES = ", "  # between the servers tried within a group


@dataclass(frozen=True)
class Hit:
    """One try of one upstream: when the request ended, which port, its status, its seconds."""

    t: float
    port: int
    status: int  # the upstream's status; 0 when nginx logged "-" (no response)
    seconds: float  # the upstream's response time; 0.0 when nginx logged "-"


@dataclass(frozen=True)
class LogChunk:
    """What one `read_hits` call found.

    `offset` is where the next call starts (just past the last complete line). `skipped` counts
    malformed lines; `unattributed` counts tries whose address has no port (nginx logs the
    upstream group's name when no server of it was available, a 502 no replica can be blamed
    for)."""

    hits: list[Hit]
    offset: int
    lines: int
    skipped: int
    unattributed: int


@dataclass(frozen=True)
class Stats:
    requests: int  # tries of the upstreams asked about
    failures: int
    success_rate: float | None  # None when there were no requests
    p99_seconds: float | None


@dataclass(frozen=True)
class Thresholds:
    min_success_rate: float = 0.99
    max_p99_seconds: float = 0.5
    min_requests: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_success_rate <= 1.0:
            raise ValueError(f"min_success_rate must be within 0..1, not {self.min_success_rate}")
        if not self.max_p99_seconds > 0:
            raise ValueError(f"max_p99_seconds must be above 0, not {self.max_p99_seconds}")
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, not {self.min_requests}")


@dataclass(frozen=True)
class Verdict:
    result: Literal["pass", "fail", "inconclusive"]
    reason: str


def read_hits(path: Path, offset: int, *, max_bytes: int = MAX_READ_BYTES) -> LogChunk:
    """The hits of the complete lines from byte `offset` on, and the offset after them.

    A partial last line is left for the next call. A log that was truncated or replaced (shorter
    than `offset`, or no line ending just before it) is read again from its start. A missing log
    is an empty one."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset < 0 or offset > size:
                offset = 0
            elif offset > 0:
                f.seek(offset - 1)
                if f.read(1) != b"\n":  # not where a line of this file ended: a new file
                    offset = 0
            f.seek(offset)
            data = f.read(max_bytes)
            end = data.rfind(b"\n") + 1
            if end == 0 and len(data) == max_bytes:
                # One "line" longer than a whole read is no log line: step over it, once it ends.
                past = _past_next_line(f, offset + len(data))
                return (
                    LogChunk([], offset, 0, 0, 0) if past is None else LogChunk([], past, 1, 1, 0)
                )
    except FileNotFoundError:
        return LogChunk([], 0, 0, 0, 0)
    if end == 0:
        return LogChunk([], offset, 0, 0, 0)
    hits, skipped, unattributed, lines = _parse(data[:end].decode("utf-8", "replace"))
    return LogChunk(hits, offset + end, lines, skipped, unattributed)


def _past_next_line(f: BinaryIO, position: int) -> int | None:
    """The offset just past the next line end from `position` on; None when none yet."""
    f.seek(position)
    while block := f.read(1024 * 1024):
        found = block.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(block)
    return None


def _parse(text: str) -> tuple[list[Hit], int, int, int]:
    hits: list[Hit] = []
    append = hits.append
    loads = json.loads
    skipped = unattributed = lines = 0
    for line in text.split("\n"):
        if not line:
            continue
        lines += 1
        try:
            record = loads(line)
            addr = record["upstream"]
            if not addr:
                continue  # nginx answered itself
            t = float(record["t"])
            status = record["upstream_status"]
            took = record["upstream_time"]
            if _TRIES not in addr and _GROUPS not in addr:
                port = _port(addr)
                if port is None:
                    unattributed += 1
                else:
                    append(Hit(t, port, _status(status), _seconds(took)))
                continue
            addrs = addr.replace(_GROUPS, _TRIES).split(_TRIES)
            statuses = status.replace(_GROUPS, _TRIES).split(_TRIES)
            times = took.replace(_GROUPS, _TRIES).split(_TRIES)
            if not len(addrs) == len(statuses) == len(times):
                raise ValueError("upstream lists of different lengths")
            for a, s, d in zip(addrs, statuses, times, strict=True):
                port = _port(a)
                if port is None:
                    unattributed += 1
                else:
                    append(Hit(t, port, _status(s), _seconds(d)))
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
    return hits, skipped, unattributed, lines


def _port(addr: str) -> int | None:
    head, sep, tail = addr.rpartition(":")
    if not sep or not head or not tail.isdigit():
        return None  # an upstream group's name, a unix socket
    return int(tail)


def _status(value: str) -> int:
    return 0 if value == "-" else int(value)


def _seconds(value: str) -> float:
    return 0.0 if value == "-" else float(value)


def failed(hit: Hit) -> bool:
    """A 5xx (nginx's own 502/504 for a refused or timed-out upstream too) or no status."""
    return hit.status >= 500 or hit.status == 0


def summarize(hits: Iterable[Hit], ports: Iterable[int]) -> Stats:
    """Requests, failures, success rate and nearest-rank p99 of the hits on `ports`."""
    wanted = frozenset(ports)
    seconds: list[float] = []
    failures = 0
    for hit in hits:
        if hit.port in wanted:
            seconds.append(hit.seconds)
            if hit.status >= 500 or hit.status == 0:
                failures += 1
    n = len(seconds)
    if n == 0:
        return Stats(0, 0, None, None)
    seconds.sort()
    p99 = seconds[math.ceil(0.99 * n) - 1]  # nearest rank: the smallest value >= 99 % of them
    return Stats(n, failures, (n - failures) / n, p99)


def judge(stats: Stats, thresholds: Thresholds) -> Verdict:
    """pass, fail or inconclusive, with a reason naming the figures it was decided on."""
    need = thresholds.min_requests
    if stats.requests < need or stats.success_rate is None or stats.p99_seconds is None:
        return Verdict(
            "inconclusive", f"{stats.requests} requests, fewer than the {need} needed to judge"
        )
    rate, floor = _apart(stats.success_rate * 100, thresholds.min_success_rate * 100, 2)
    p99, ceiling = _apart(stats.p99_seconds * 1000, thresholds.max_p99_seconds * 1000, 0)
    if stats.success_rate < thresholds.min_success_rate:
        return Verdict(
            "fail",
            f"success rate {rate} % is below the {floor} % required "
            f"({stats.failures} of {stats.requests} requests failed)",
        )
    if stats.p99_seconds > thresholds.max_p99_seconds:
        return Verdict(
            "fail",
            f"p99 latency {p99} ms is above the {ceiling} ms allowed "
            f"(over {stats.requests} requests)",
        )
    return Verdict(
        "pass",
        f"success rate {rate} % (at least {floor} %), p99 latency {p99} ms "
        f"(at most {ceiling} ms) over {stats.requests} requests",
    )


def _apart(value: float, limit: float, decimals: int) -> tuple[str, str]:
    """Both figures with enough decimals that two different numbers never print the same."""
    for places in range(decimals, decimals + 5):
        a, b = f"{value:.{places}f}", f"{limit:.{places}f}"
        if a != b or value == limit:
            return a, b
    return f"{value:.{decimals + 5}f}", f"{limit:.{decimals + 5}f}"
