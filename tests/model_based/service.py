"""The service a state machine drives: one app on the in-memory adapters, or on PostgreSQL and
Redis; its clock, its mail, and what its caches hold against what its database says."""

from __future__ import annotations

import atexit
import json
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.caching import keys
from adapters.clock import FrozenClock
from app.factory import create_app
from application.session_state.states import load_state
from domain.session_state.model import AccountStatus, UserState
from domain.users.queries import PageRequest, UserFilter
from tests.model_based.model import START
from tests.settings import TEST_ENV


class Service:
    """One app, its clock standing still until the machine moves it."""

    def __init__(self, on_close: Callable[[], None] = lambda: None, **env: str) -> None:
        self.on_close = on_close
        self.app = create_app({**TEST_ENV, **env})
        self.container = self.app.extensions["container"]
        self.clock = FrozenClock(START)
        # The container built its clock before the app could be handed another: every handler
        # and adapter holds this one instance, so its `now` is replaced on the instance.
        self.container.clock().now = self.clock.now
        self.states = self.container.caching.states()
        self.writes: list[UserState] = []  # every session-state write, oldest first
        self.write_again = write = self.states.write  # unrecorded

        def recorded(state: UserState) -> Any:
            self.writes.append(state)
            return write(state)

        # Every handler, consumer and request holds this one store: recorded on the instance.
        self.states.write = recorded
        self.client = self.app.test_client()
        self.outbox: list = self.container.mailer().outbox

    def close(self) -> None:
        self.app.extensions["deferred"].join()
        self.on_close()

    def token_mailed(self, template: str, to: str) -> str | None:
        """The token of the newest mail of `template` to `to` since the outbox was last emptied."""
        found = [
            mail.params["token"] for mail, _ in self.outbox if mail.template == template and mail.to == to
        ]
        self.outbox.clear()
        return found[-1] if found else None

    # -- what the caches hold -----------------------------------------------------------------

    def disagreements(self, user_ids: list[str], emails: list[str], pages: set[tuple]) -> list[str]:
        """Every cached user, lookup by email, list page and session state that differs from
        what the database says now (an entry absent from the cache is no disagreement)."""
        cache, codec, now = self.container.caching.cache(), self.container._codec(), self.clock.now()
        states = self.states
        problems: list[str] = []
        with self.container.storage.read_uow() as uow:
            for user_id in map(UUID, user_ids):
                entry = cache.get(keys.user(user_id))
                if entry is not None:
                    _compare(
                        problems, f"user {user_id}", _record(entry.value, codec), _row(uow.users.get(user_id))
                    )
                cached_state = states.read(user_id, reader="model-based test")
                if cached_state is not None:
                    _compare_state(problems, cached_state, load_state(uow, user_id, now), now)
            for email in emails:
                entry = cache.get(keys.user_email(email))
                if entry is not None:
                    _compare(
                        problems,
                        f"email {email}",
                        _record(entry.value, codec),
                        _row(uow.users.get_by_email(email)),
                    )
            for email, confirmed, page, size in pages:
                filter, request = UserFilter(email, confirmed), PageRequest(page, size)
                entry = cache.get(keys.user_collection(filter, request))
                if entry is not None:
                    found = uow.users.list(filter, request)
                    stored = json.loads(entry.value)
                    expected = {"total": found.total, "items": [_row(u) for u in found.items]}
                    stored["items"] = [_strip(item) for item in stored["items"]]
                    _compare(problems, f"list page {filter}, {request}", stored, expected)
        return problems


_SCHEMA: list[str] = []  # one PostgreSQL schema per test process, emptied for each example
TABLES = "payments, subscriptions, login_activity, refresh_tokens, sessions, account_tokens, users"


def postgres_redis_service() -> Service:
    """The app on a PostgreSQL schema of this process's own (made and migrated at first use,
    dropped when the process ends), emptied first, and on Redis under a key prefix of its own,
    removed when the service closes."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from tests.integration.backends import migrated, postgres_url
    from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

    if not _SCHEMA:
        schema = f"t_model_{secrets.token_hex(6)}"
        admin = create_engine(postgres_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))

        @atexit.register
        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        migrated(postgres_url(schema))
        _SCHEMA.append(schema)  # only once migrated: a failed migration is tried again
    url = postgres_url(_SCHEMA[0])
    redis, prefix = redis_client(), new_prefix("model")

    def close() -> None:
        service.container.storage.engine().dispose()
        delete_prefixed(redis, prefix)
        redis.close()

    service = Service(close, DATABASE_URL=url, CACHE_URL=REDIS_URL, CACHE_PREFIX=prefix)
    with service.container.storage.engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {TABLES}"))
    return service


def _row(user: Any) -> dict | None:
    if user is None:
        return None
    fields = ("email", "initials", "password_hash", "confirmed", "status", "version")
    row = {name: getattr(user, name) for name in fields}
    return {**row, "id": str(user.id), "roles": sorted(user.roles), "status": str(row["status"])}


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "created_at"}


def _record(value: bytes, codec: Any) -> dict | None:
    return None if value == b"" else _row(codec.decode(value))


def _compare(problems: list[str], what: str, cached: Any, database: Any) -> None:
    if cached != database:
        problems.append(f"{what}: the cache holds {cached}, the database says {database}")


def _compare_state(problems: list[str], cached: UserState, database: UserState | None, now: datetime) -> None:
    """Each group the entry holds against the database's (values: a group's version may lag
    where its source moved on without changing it). A deleted user's entry may only be its
    tombstone."""
    what = f"session state of {cached.user_id}"
    if database is None:
        if (
            cached.identity is None
            or cached.identity.value.status != AccountStatus.DELETED
            or _live(cached, now)
        ):
            problems.append(f"{what}: the user is gone, the cache holds {cached}")
        return
    for group, held in cached.groups().items():
        expected = database.groups()[group]
        held_value, expected_value = held.value, expected.value
        if group == "sessions":
            held_value, expected_value = _live_sessions(held_value, now), _live_sessions(expected_value, now)
        if held_value != expected_value:
            problems.append(
                f"{what}, {group}: the cache holds {held_value}, the database says {expected_value}"
            )


def _live(state: UserState, now: datetime) -> dict:
    return {} if state.sessions is None else _live_sessions(state.sessions.value, now)["live"]


def _live_sessions(sessions: Any, now: datetime) -> Any:
    live = {sid: s for sid, s in sessions.live.items() if now < s.expires_at}
    return {"live": live, "last_login_at": sessions.last_login_at}


def new_prefix(name: str) -> str:
    return f"test:{name}:{secrets.token_hex(6)}:"
