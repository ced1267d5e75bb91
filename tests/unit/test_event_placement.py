"""Where each subscriber runs (app/wiring/events.py): every one has a place, the command path
keeps what read-your-writes needs, and without a broker everything runs in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY as METRICS

from adapters.caching import users as user_caches
from app.factory import create_app
from app.wiring.events import (
    IN_PROCESS,
    PLACEMENT,
    WORKER,
    FirstAttempt,
    by_name,
    merged,
    placed,
    placement,
    subscriber_name,
)
from application.auth import handlers as auth
from application.subscriptions import handlers as subscriptions
from application.users import handlers as users
from domain.users.events import UserRolesChanged
from tests.settings import TEST_ENV

ALL = merged(
    users.EVENT_HANDLERS, auth.EVENT_HANDLERS, subscriptions.EVENT_HANDLERS, user_caches.EVENT_HANDLERS
)


def names(subscribers) -> set[str]:
    return {subscriber_name(handler) for handlers in subscribers.values() for handler in handlers}


def test_every_subscriber_has_a_place_and_every_place_a_subscriber():
    assert names(ALL) == set(PLACEMENT)


def test_without_a_broker_every_subscriber_runs_in_process():
    assert placed(ALL, IN_PROCESS, durable=False) == ALL
    assert placed(ALL, WORKER, durable=False) == {}


def test_with_a_broker_the_command_path_keeps_invalidation_and_the_state_groups():
    in_process = names(placed(ALL, IN_PROCESS, durable=True))
    assert {name for name in PLACEMENT if name.startswith("caching.")} <= in_process
    assert {"auth.update_roles_state", "subscriptions.update_subscription_state"} <= in_process
    assert "auth.record_login_activity" not in in_process
    assert names(placed(ALL, WORKER, durable=True)) == set(PLACEMENT)


def test_a_worker_subscriber_consumes_every_event_type_it_handles():
    workers = by_name(placed(ALL, WORKER, durable=True))
    assert set(workers["auth.record_login_activity"][1]) == {"UserLoggedIn", "UserLoggedOut"}
    assert workers["caching.invalidate_updated"][1] == ("UserUpdated",)


def test_a_subscriber_without_a_place_is_refused_by_name():
    def stray(event) -> None: ...

    with pytest.raises(LookupError, match="stray"):
        placement(stray)


def test_with_a_broker_the_in_process_run_of_a_worker_subscriber_is_a_first_attempt(tmp_path, caplog, faker):
    """Its failure is logged and counted, never raised into the request nor retried from memory;
    the subscribers that run only in-process keep the bus's own retries."""
    app = create_app(
        {
            **TEST_ENV,
            "DATABASE_URL": f"sqlite:///{tmp_path}/users.db",
            "EVENTS_URL": "amqp://guest:guest@mq//",
        }
    )
    bus = app.extensions["container"].event_bus()
    [receiver] = bus._signals.get("domain.users.events.UserRolesChanged").receivers.values()
    assert isinstance(receiver, FirstAttempt) and receiver.name == "auth.update_roles_state"

    def fail(event):
        raise RuntimeError("the state store is away")

    attempt = FirstAttempt("auth.update_roles_state", fail)
    before = METRICS.get_sample_value("events_deferred_total", {"subscriber": "auth.update_roles_state"}) or 0
    changed = UserRolesChanged(
        user_id=faker.uuid4(cast_to=None), roles=frozenset({"user"}), version=2, occurred_at=datetime.now(UTC)
    )
    attempt(changed)  # does not raise
    after = METRICS.get_sample_value("events_deferred_total", {"subscriber": "auth.update_roles_state"})
    assert after == before + 1
    assert "operation=event.deferred subscriber=auth.update_roles_state" in caplog.text
