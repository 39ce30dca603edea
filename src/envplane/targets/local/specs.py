"""Typed reads from a resource spec. A malformed spec is a rendering bug: say which key is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envplane.errors import BadInput


def _bad(key: str, field: str, what: str, value: Any) -> BadInput:
    return BadInput(f"resource {key}: spec.{field} must be {what}, got {value!r:.80}")


def spec_int(spec: Mapping[str, Any], field: str, key: str) -> int:
    value = spec.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, field, "an integer", value)
    return value


def spec_port(spec: Mapping[str, Any], field: str, key: str) -> int:
    value = spec_int(spec, field, key)
    if not 1024 <= value <= 65535:
        raise _bad(key, field, "a port between 1024 and 65535", value)
    return value


def spec_str(spec: Mapping[str, Any], field: str, key: str) -> str:
    value = spec.get(field)
    if not isinstance(value, str) or not value:
        raise _bad(key, field, "a non-empty string", value)
    return value


def spec_bool(spec: Mapping[str, Any], field: str, key: str, default: bool = False) -> bool:
    value = spec.get(field, default)
    if not isinstance(value, bool):
        raise _bad(key, field, "true or false", value)
    return value


def spec_map(spec: Mapping[str, Any], field: str, key: str) -> Mapping[str, Any]:
    value = spec.get(field, {})
    if not isinstance(value, Mapping):
        raise _bad(key, field, "a mapping", value)
    return value


def spec_str_map(spec: Mapping[str, Any], field: str, key: str) -> dict[str, str]:
    value = spec_map(spec, field, key)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _bad(key, field, "a mapping of strings to strings", value)
    return dict(value)


def spec_list(spec: Mapping[str, Any], field: str, key: str) -> list[Any]:
    value = spec.get(field, [])
    if not isinstance(value, list | tuple):
        raise _bad(key, field, "a list", value)
    return list(value)
