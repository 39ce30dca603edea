"""StateStore: the one source of truth on environments, operations, locks, secrets and
delivery (releases, rollouts, what is live, promotions).

Open it with `StateStore.open(url, home)`; every method commits before it returns, so several
envplane processes (or operators sharing PostgreSQL) can use one store at the same time.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from sqlalchemy.exc import OperationalError

from envplane.errors import EnvplaneError
from envplane.state.auditlog import AuditMixin
from envplane.state.db import make_engine, safe_url
from envplane.state.delivery import DeliveryMixin
from envplane.state.documents import DocumentsMixin
from envplane.state.environments import EnvironmentsMixin
from envplane.state.identities import IdentitiesMixin
from envplane.state.journal import JournalMixin
from envplane.state.locking import LockMixin
from envplane.state.migrate import ensure_schema
from envplane.state.plans import PlansMixin
from envplane.state.previews import PreviewRecord, PreviewsMixin
from envplane.state.procs import Me, me
from envplane.state.records import (
    ApprovalRecord,
    AuditRecord,
    EnvironmentRecord,
    LiveRecord,
    OperationRecord,
    PromotionRecord,
    ReleaseRecord,
    ResourceRecord,
    RolloutRecord,
    SavedPlanRecord,
    StepRecord,
    ValidationRecord,
)
from envplane.state.vault import VaultMixin

__all__ = [
    "ApprovalRecord",
    "AuditRecord",
    "EnvironmentRecord",
    "LiveRecord",
    "OperationRecord",
    "PreviewRecord",
    "PromotionRecord",
    "ReleaseRecord",
    "ResourceRecord",
    "RolloutRecord",
    "SavedPlanRecord",
    "StateStore",
    "StepRecord",
    "ValidationRecord",
]


class StateStore(
    EnvironmentsMixin,
    JournalMixin,
    LockMixin,
    VaultMixin,
    AuditMixin,
    PlansMixin,
    DocumentsMixin,
    DeliveryMixin,
    PreviewsMixin,
    IdentitiesMixin,
):
    @classmethod
    def open(cls, url: str, home: Path, *, actor: str | None = None) -> StateStore:
        """Connect, creating `home` and an SQLite file as needed, and migrate if behind.

        `actor` overrides the OS user recorded in operations and the audit trail.
        """
        home = Path(home).absolute()
        home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        try:
            ensure_schema(engine)
        except OperationalError as exc:
            engine.dispose()
            raise EnvplaneError(
                f"cannot open the state database {safe_url(url)}: {exc.orig}",
                hint="check ENVPLANE_DATABASE_URL, and that the database server is running "
                "and reachable",
            ) from None
        except BaseException:
            engine.dispose()
            raise
        ident = me()
        if actor:
            ident = Me(pid=ident.pid, host=ident.host, user=actor, start=ident.start)
        return cls(engine, home, ident)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
