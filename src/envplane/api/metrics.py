"""Prometheus metrics of one server: requests by route template and status, operations by
kind and outcome with their durations. A registry of its own per app (tests build many)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from envplane.events import Event, OperationFinished, OperationStarted

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "envplane_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "envplane_http_request_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.operations = Counter(
            "envplane_operations",
            "Operations finished, by kind and outcome (succeeded, failed).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "envplane_operation_seconds",
            "Duration of operations run by this server, by kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
            buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self._started: dict[str, float] = {}

    def observe_event(self, event: Event) -> None:
        if isinstance(event, OperationStarted):
            self._started[event.operation_id] = time.monotonic()
        elif isinstance(event, OperationFinished):
            began = self._started.pop(event.operation_id, None)
            self.operations.labels(event.kind, event.status).inc()
            if began is not None:
                seconds = time.monotonic() - began
                self.operation_seconds.labels(event.kind, event.status).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
