"""Where each subscriber runs (app/wiring/events.py): every one has a place, the command path
keeps what read-your-writes needs, and without a broker everything runs in-process."""

from __future__ import annotations

import pytest

from adapters.caching import users as user_caches
from app.wiring.events import (
    IN_PROCESS,
    PLACEMENT,
    WORKER,
    by_name,
    merged,
    placed,
    placement,
    subscriber_name,
)
from application.auth import handlers as auth
from application.subscriptions import handlers as subscriptions
from application.users import handlers as users

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
