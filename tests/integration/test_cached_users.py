"""The cached user repository over every database adapter and both caches: reads through the
cache, the invalidating subscribers, and I6 (no stale set) as a deterministic interleaving
with a real write in the middle of a read."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from adapters.caching import keys
from adapters.caching.read_through import ReadThrough
from adapters.caching.users import EVENT_HANDLERS, CachedReadUnitOfWork, RecordCodec
from domain.users.events import UserRegistered, UserUpdated
from domain.users.model import User
from domain.users.queries import PageRequest, UserFilter
from ports.tag_cache import TagCache
from tests.contracts.tag_cache.conftest import Backend as CacheBackend
from tests.contracts.tag_cache.conftest import local_backend, memory_backend, redis_backend  # noqa: F401 (fixtures)
from tests.integration.backends import NOW, Backend


class InvalidatingBus:
    """The event bus with only the cache subscribers, as the app wires them after commit."""

    def __init__(self, cache: TagCache) -> None:
        self.cache = cache
        self.events: list = []

    def publish(self, event: object) -> None:
        self.events.append(event)
        for subscriber in EVENT_HANDLERS.get(type(event), []):
            subscriber(event, cache=self.cache)


class ReadHook:
    """A unit of work whose repository runs `hook` right after a database read returns."""

    def __init__(self, inner, hook: Callable[[], None]) -> None:
        self._inner, self._hook = inner, hook

    def __enter__(self):
        self._inner.__enter__()
        self.users = _HookedUsers(self._inner.users, self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        self._inner.__exit__(*exc_info)


class _HookedUsers:
    def __init__(self, inner, hook) -> None:
        self._inner, self._hook = inner, hook

    def get(self, user_id: UUID, *, lock: bool = False) -> User | None:
        user = self._inner.get(user_id, lock=lock)
        self._hook()
        return user


@pytest.fixture(params=["memory", "local", "redis"])
def cache(request: pytest.FixtureRequest) -> CacheBackend:
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def stored(backend: Backend, cache: CacheBackend, make_user) -> User:
    user = make_user(initials="OLD")
    with backend.uow(InvalidatingBus(cache.peer)) as uow:
        uow.users.add(user)
        uow.commit()
    return user


def reader(backend: Backend, cache: CacheBackend, hook: Callable[[], None] | None = None):
    inner = backend.read_uow(InvalidatingBus(cache.cache))
    if hook is not None:
        inner = ReadHook(inner, hook)
    return CachedReadUnitOfWork(inner, ReadThrough(cache.cache, clock=cache.now), RecordCodec())


def rename(backend: Backend, cache: CacheBackend, user_id: UUID, initials: str) -> None:
    """A command's write: lock, change, commit; the bus then invalidates (another worker's cache
    handle, as in production)."""
    with backend.uow(InvalidatingBus(cache.peer)) as uow:
        user = uow.users.get(user_id, lock=True)
        user.update(initials=initials)
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=NOW))
        uow.commit()


def test_a_second_read_is_served_by_the_cache_without_the_database(backend, cache, stored) -> None:
    with reader(backend, cache) as uow:
        assert uow.users.get(stored.id).initials == "OLD"

    def fail() -> None:
        raise AssertionError("a hit must not reach the database")

    with reader(backend, cache, hook=fail) as uow:
        found = uow.users.get(stored.id)
    assert (found.id, found.email, found.initials, found.version) == (stored.id, stored.email, "OLD", 1)
    assert found.password_hash == stored.password_hash and found.created_at == stored.created_at


def test_no_stale_set_after_a_write_in_the_middle_of_a_read(backend, cache, stored) -> None:
    """I6: the reader loads OLD from the database; the writer commits NEW and invalidates; the
    reader then tries to store OLD. The next read must return NEW."""
    # On SQLite the reader's transaction is DEFERRED (WAL), so the writer is not blocked by it.
    with reader(backend, cache, hook=lambda: rename(backend, cache, stored.id, "NEW")) as uow:
        assert uow.users.get(stored.id).initials == "OLD"  # what it read, before the write
    with reader(backend, cache) as uow:
        assert uow.users.get(stored.id).initials == "NEW"
    assert cache.cache.get(keys.user(stored.id)) is not None  # and the cache holds NEW now
    with reader(backend, cache) as uow:
        assert uow.users.get(stored.id).version == 2


def test_list_pages_and_email_lookups_are_invalidated_by_the_events(
    backend, cache, stored, make_user
) -> None:
    with reader(backend, cache) as uow:
        page = uow.users.list(UserFilter(), PageRequest(1, 10))
        assert [u.id for u in page.items] == [stored.id] and page.total == 1
        assert uow.users.get_by_email(stored.email).id == stored.id
        newcomer = make_user()
        assert uow.users.get_by_email(newcomer.email) is None  # cached as "not found"

    newcomer.record(UserRegistered(user_id=newcomer.id, email=newcomer.email, occurred_at=NOW))
    with backend.uow(InvalidatingBus(cache.peer)) as uow:
        uow.users.add(newcomer)
        uow.commit()
    rename(backend, cache, stored.id, "NEW")

    with reader(backend, cache) as uow:
        page = uow.users.list(UserFilter(), PageRequest(1, 10))
        assert [(u.id, u.initials) for u in page.items] == [
            (stored.id, "NEW"),
            (newcomer.id, newcomer.initials),
        ]
        assert uow.users.get_by_email(newcomer.email).id == newcomer.id
        assert uow.users.get_by_email(stored.email).initials == "NEW"


def test_locked_reads_always_go_to_the_database(backend, cache, stored) -> None:
    with reader(backend, cache) as uow:
        uow.users.get(stored.id)
    rename(backend, cache, stored.id, "NEW")
    key = keys.user(stored.id)
    cache.cache.set(  # even a (hypothetically) wrong entry is never used for a locked read
        key, RecordCodec().encode(stored), ttl=60, versions=cache.cache.tag_versions(key, [])
    )
    with CachedReadUnitOfWork(backend.uow(), ReadThrough(cache.cache), RecordCodec()) as uow:
        assert uow.users.get(stored.id, lock=True).initials == "NEW"
