"""The API's own documents (everything else is a service-layer view, the CLI's `-o json`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from envplane.api.jobs import Job
from envplane.api.problems import Problem
from envplane.service.results import OperationView


class JobView(BaseModel):
    """A long operation started by a request: `202` while it runs."""

    job_id: str
    kind: str
    environment: str | None
    state: Literal["running", "succeeded", "failed"]
    operation_id: str | None
    """The first operation it started (`GET /operations/{id}`); null before it started."""
    operation_ids: list[str]
    result: Any = None
    """When it succeeded: the document the CLI's `-o json` prints for it."""
    problem: Problem | None = None
    """When it failed: what the CLI would print (message and hint)."""

    @classmethod
    def of(cls, job: Job) -> JobView:
        with job.changed:
            return cls(
                job_id=job.id,
                kind=job.kind,
                environment=job.environment,
                state=job.state,
                operation_id=job.operation_ids[0] if job.operation_ids else None,
                operation_ids=list(job.operation_ids),
                result=job.result if job.state == "succeeded" else None,
                problem=job.problem,
            )


class OperationDetail(BaseModel):
    operation: OperationView | None
    """The journal's record, with its steps (null while a job prepares)."""
    job: JobView | None
    """The job that ran it in this server process, while the server remembers it."""


class SessionRequest(BaseModel):
    token: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=1024)


class WhoAmI(BaseModel):
    kind: str
    name: str
    role: str
    envs: list[str]
    person: str


class SessionView(WhoAmI):
    csrf_token: str | None
    """Send it in X-CSRF-Token with every change made with the session cookie."""


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    jobs_running: int


class CreateRequest(BaseModel):
    name: str = Field(max_length=64)
    template: str | None = Field(default=None, max_length=64)
    target: str = Field(default="local", max_length=32)


class DestroyRequest(BaseModel):
    force: bool = False
    """Required for a production-like (approval_required) environment, as on the CLI."""


class BackupRequest(BaseModel):
    backup_type: Literal["full", "data", "config"] = "full"
    logical: bool = False


class RestoreRequest(BaseModel):
    backup_id: str = Field(max_length=128)
    from_env: str | None = Field(default=None, max_length=64)
    force: bool = False
    unmasked: bool = False


class CloneRequest(BaseModel):
    source: str = Field(max_length=64)
    with_data: bool = False
    unmasked: bool = False


class SyncRequest(BaseModel):
    source: str = Field(max_length=64)
    sync_type: Literal["config", "data", "both"]
    force: bool = False
    unmasked: bool = False


class ReleaseRequest(BaseModel):
    pins: list[str] = Field(default_factory=list, max_length=100)
    """SERVICE=VERSION pins."""
    from_env: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=1000)


class DeployRequest(BaseModel):
    release: str = Field(max_length=64)
    strategy: str | None = Field(default=None, max_length=32)
    force: bool = False


class PromoteRequest(BaseModel):
    release: str = Field(max_length=64)
    environment: str = Field(max_length=64)
    message: str | None = Field(default=None, max_length=1000)


class DecisionRequest(BaseModel):
    message: str | None = Field(default=None, max_length=1000)


class PreviewRequest(BaseModel):
    branch: str = Field(max_length=200)
    source: str | None = Field(default=None, max_length=64)
    ttl: str | None = Field(default=None, max_length=16)
    with_data: bool = False
    release: str | None = Field(default=None, max_length=64)


class ExtendRequest(BaseModel):
    ttl: str = Field(max_length=16)


class TokenRequest(BaseModel):
    name: str = Field(max_length=64)
    role: Literal["viewer", "deployer", "approver", "admin"]
    envs: str | None = Field(default=None, max_length=1000)
    expires: str | None = Field(default=None, max_length=16)
    person: str | None = Field(default=None, max_length=64)


class TokenCreated(BaseModel):
    name: str
    role: str
    token: str
    """Shown once: only its hash is stored."""


class PreviewDestroyed(BaseModel):
    destroyed: bool
    messages: list[str]
