"""Which release `rollback` goes back to, from the rollouts the store recorded: the one live
before, never one a rollback left (unless deployed again since), and what ran before the
first release."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from envplane.delivery.rollback import previous_good
from envplane.errors import BadInput
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

ENV = "staging"


class History:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.ws: Any = SimpleNamespace(store=store)
        self.ops = 0
        self.live: str | None = None

    def release(self, version: str) -> str:
        return self.store.create_release({"api": version}, config_digest="ab" * 32).id

    def went_live(self, release: str, kind: str = "deploy", status: str = "succeeded") -> None:
        self.ops += 1
        op = f"op-20261201-0900-{self.ops:06x}"
        time.sleep(0.002)  # rollouts sort by when they started
        self.store.start_rollout(
            op, ENV, release, kind=kind, strategy="rolling", previous_release_id=self.live
        )
        self.store.update_rollout(op, status=status, finished=True)  # type: ignore[arg-type]
        if status == "succeeded":
            self.store.set_live(
                ENV,
                release_id=release,
                services={"api": {"version": "x", "color": "blue"}},
                rollout_id=op,
                previous_release_id=self.live,
            )
            self.live = release

    def previous(self) -> str:
        return previous_good(self.ws, ENV)


@pytest.fixture
def history(store: StateStore) -> History:
    store.save_environment(ENV, target="local", status="ready")
    return History(store)


def test_rollback_goes_to_the_release_live_before(history: History) -> None:
    a, b = history.release("1.0.0"), history.release("1.1.0")
    history.went_live(a)
    history.went_live(b)
    assert history.previous() == a


def test_a_second_rollback_goes_further_back_not_forth(history: History) -> None:
    base, a, b = (history.release(v) for v in ("0.9.0", "1.0.0", "1.1.0"))
    history.live = base  # what ran before the first release (the baseline)
    history.went_live(a)
    history.went_live(b)
    history.went_live(a, kind="rollback")  # the first rollback: b -> a
    assert history.previous() == base  # not b, which that rollback left


def test_a_release_deployed_again_after_a_rollback_counts_again(history: History) -> None:
    a, b, c = (history.release(v) for v in ("1.0.0", "1.1.0", "1.2.0"))
    history.went_live(a)
    history.went_live(b)
    history.went_live(a, kind="rollback")
    history.went_live(b)  # fixed and deployed again on purpose
    history.went_live(c)
    assert history.previous() == b


def test_a_failed_rollout_never_counts_as_good(history: History) -> None:
    a, b, bad = (history.release(v) for v in ("1.0.0", "1.1.0", "1.2.0-bad"))
    history.went_live(a)
    history.went_live(bad, status="rolled_back")
    history.went_live(b)
    assert history.previous() == a


def test_nothing_earlier_is_bad_input(history: History) -> None:
    history.went_live(history.release("1.0.0"))
    with pytest.raises(BadInput, match="no earlier release"):
        history.previous()
