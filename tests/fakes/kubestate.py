"""What tests/fakes/kubeapi.py keeps of objects beyond their bodies, as a real API server does:
field ownership for server-side apply (leaf paths per field manager, lists atomic; conflicts
as the 409 Status kube-apiserver answers), the Pods a kubelet would report, and the Status
objects of errors."""

from __future__ import annotations

from typing import Any

Path_ = tuple[str, ...]


def pod_object(
    ns: str, name: str, labels: dict[str, str], *, ready: bool, reason: str = "", ip: str = ""
) -> dict[str, Any]:
    """A Pod as the API returns it once scheduled: Running, Ready or not (with the reason a
    kubelet gives, e.g. CrashLoopBackOff in the container's waiting state)."""
    condition: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "False"}
    container: dict[str, Any] = {"name": "app", "ready": ready, "restartCount": 0}
    if not ready:
        condition["reason"] = "ContainersNotReady"
        container["state"] = {"waiting": {"reason": reason or "ContainersNotReady"}}
        container["restartCount"] = 4 if reason == "CrashLoopBackOff" else 0
    else:
        container["state"] = {"running": {"startedAt": "2025-01-15T10:00:05Z"}}
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [condition],
            "containerStatuses": [container],
        },
    }


# Fields every manager sets alike: never a conflict, as on a real server (name, namespace).
META_KEYS = {("metadata", "name"), ("metadata", "namespace")}


def _leaves(value: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """The fields an applied object sets: maps are walked, lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, str(k)))]
    return [(path, value)] if path else []


def _has(obj: Any, path: Path_) -> bool:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return False
        obj = obj[part]
    return True


def _at(obj: Any, path: Path_) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _put(obj: dict[str, Any], path: Path_, value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = value


def _merge(into: dict[str, Any], value: dict[str, Any]) -> None:
    for k, v in value.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _field(path: Path_) -> str:
    return "".join(f".{p}" for p in path)


def _conflict(conflicts: list[tuple[str, Path_]], api_version: str) -> tuple[int, dict[str, Any]]:
    """409 as kube-apiserver answers an apply that conflicts (message and details.causes)."""
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{manager}" using {api_version}',
            "field": _field(path),
        }
        for manager, path in conflicts
    ]
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = (
            f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: '
            f"{_field(path)}"
        )
    else:
        listed = "\n".join(
            f'- conflict with "{m}" using {api_version}: {_field(p)}' for m, p in conflicts
        )
        message = f"Apply failed with {len(conflicts)} conflicts:\n{listed}"
    code, status = _status(409, "Conflict", message)
    status["details"] = {"causes": causes}
    return code, status


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _not_found(key: tuple[str, str, str]) -> tuple[int, dict[str, Any]]:
    return _status(404, "NotFound", f'{key[0]} "{key[2]}" not found')
