"""The data a target driver receives: resources with JSON specs, and what the user must know."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@dataclass(frozen=True)
class Resource:
    """One thing a target creates and owns, e.g. ("postgres", "postgres") or ("service", "backend").

    `spec` is JSON-able and complete: two equal specs mean nothing to change. Secrets appear
    only as names (e.g. "postgres-password"); their values live encrypted in the state store.
    """

    kind: str
    name: str
    spec: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def digest(self) -> str:
        return digest({"kind": self.kind, "name": self.name, "spec": self.spec})


COLORS = ("blue", "green")


@dataclass(frozen=True)
class Running:
    """What one service of an environment runs: the version, and the color (set of replica
    ports) it runs on. Before any release: its initial version, on blue."""

    version: str
    color: str = "blue"


def other_color(color: str) -> str:
    return COLORS[1 - COLORS.index(color)]


@dataclass(frozen=True)
class DesiredEnvironment:
    name: str
    project: str
    target: str
    resources: tuple[Resource, ...]
    # What the target cannot honour (e.g. multi-AZ on one machine): said once, never dropped.
    notes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # names of secrets the environment needs generated
    ports: tuple[str, ...] = field(default=())  # allocation keys the environment needs

    def resource(self, key: str) -> Resource:
        for res in self.resources:
            if res.key == key:
                return res
        raise KeyError(key)
