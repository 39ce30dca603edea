"""Two-phase changes: `plan` computes and saves a plan with an id; `apply_plan` applies exactly
that plan, or refuses when the matrix or the world changed since (Terraform's `plan -out` /
`apply PLAN`).

A saved plan records what was asked (environment, target, template) and the ports a create
would allocate, so applying it renders the very same resources. Its fingerprint is the
sha256 of the plan document, the matrix file's bytes and the environment's recorded state
(status, last operation, resources' digests): applying recomputes it and compares.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, Blocked, OperationFailed
from envplane.lifecycle import create, update
from envplane.lifecycle.apply import planned
from envplane.plan.model import Plan
from envplane.service.results import SavedPlanView
from envplane.state.plans import PLAN_ID
from envplane.workspace import Workspace

PLAN_FILE_FORMAT = "envplane-plan/1"


class StalePlan(Blocked):
    """The saved plan no longer describes what applying would do."""


@dataclass(frozen=True)
class SavedPlan:
    id: str | None  # None: computed, not saved
    plan: Plan
    request: dict[str, Any]


def _fingerprint(ws: Workspace, env: str, plan: Plan) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(plan.to_json(), sort_keys=True, default=str).encode())
    try:
        digest.update(ws.settings.matrix_path.read_bytes())
    except OSError:
        digest.update(b"<no matrix>")
    record = ws.store.get_environment(env)
    if record is not None:
        digest.update(f"{record.status}|{record.last_operation_id}|{record.target}".encode())
    for key, res in sorted(ws.store.resources(env).items()):
        digest.update(f"{key}={res.digest};".encode())
    return digest.hexdigest()


def plan(
    ws: Workspace, env: str, *, target: str | None = None, template: str | None = None
) -> SavedPlan:
    """What `create` (a new environment) or `update` (an existing one) would do; not saved."""
    computed, request = planned(ws, env, target=target, template=template)
    return SavedPlan(None, computed, request)


def save_plan(
    ws: Workspace,
    env: str,
    *,
    target: str | None = None,
    template: str | None = None,
    out: Path | None = None,
) -> SavedPlan:
    """Compute the plan and keep it in the state store (and in `out`, a plan file)."""
    computed, request = planned(ws, env, target=target, template=template)
    record = ws.store.save_plan(
        env,
        computed.operation,
        request=request,
        plan=computed.to_json(),
        fingerprint=_fingerprint(ws, env, computed),
    )
    saved = SavedPlan(record.id, computed, request)
    if out is not None:
        doc = {"format": PLAN_FILE_FORMAT, **SavedPlanView.of(saved).model_dump(mode="json")}
        out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return saved


def _plan_id(ref: str) -> str:
    """A plan id, or the path of a plan file written by `plan --out`."""
    if PLAN_ID.match(ref):
        return ref
    path = Path(ref)
    if not path.is_file():
        raise BadInput(
            f"{ref!r} is neither a plan id nor a plan file",
            hint="save one with `envplane plan ENV --save` or `--out FILE`",
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{ref}: not a plan file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FILE_FORMAT:
        raise BadInput(f"{ref}: not a plan file (no format {PLAN_FILE_FORMAT!r})")
    plan_id = doc.get("plan_id")
    if not isinstance(plan_id, str) or not PLAN_ID.match(plan_id):
        raise BadInput(f"{ref}: plan file without a valid plan_id")
    return plan_id


def apply_plan(ws: Workspace, ref: str) -> Outcome:
    """Apply a saved plan exactly; StalePlan (exit 3) when it no longer holds."""
    plan_id = _plan_id(ref)
    saved = ws.store.get_plan(plan_id)
    if saved is None:
        raise BadInput(f"no saved plan {plan_id!r}", hint="`envplane plan ENV --save` makes one")
    if saved.applied_operation_id:
        raise BadInput(
            f"plan {plan_id} was applied already (operation {saved.applied_operation_id})",
            hint=f"plan again: envplane plan {saved.env} --save",
        )
    request = saved.request
    now, _ = planned(
        ws,
        saved.env,
        target=request.get("target"),
        template=request.get("template"),
        ports=request.get("ports") or None,
    )
    if _fingerprint(ws, saved.env, now) != saved.fingerprint or now.to_json() != saved.plan:
        raise StalePlan(
            f"plan {plan_id} is stale: the matrix, the templates or environment "
            f"{saved.env!r} changed since it was made; nothing was applied",
            hint=f"plan again: envplane plan {saved.env} --save",
        )
    if not ws.store.mark_plan_applied(plan_id, "claimed"):  # one apply per plan, even racing
        raise StalePlan(f"plan {plan_id} is being applied by another process")
    try:
        if saved.kind == "create":
            outcome = create(
                ws,
                saved.env,
                target=str(request.get("target") or "local"),
                template=request.get("template"),
                ports=request.get("ports") or None,
            )
        else:
            outcome = update(
                ws, saved.env, template=request.get("template"), ports=request.get("ports") or None
            )
    except OperationFailed as exc:
        # It ran and failed: the plan is spent; its operation is the one to resume.
        ws.store.set_plan_operation(plan_id, exc.operation_id or "failed")
        raise
    except BaseException:
        ws.store.set_plan_operation(plan_id, None)  # refused before it ran: still applicable
        raise
    ws.store.set_plan_operation(plan_id, outcome.operation_id or "no-change")
    return outcome
