"""The read along on Redis (adapters.caching.read_ahead): the session state and the entry the
request wants in one round trip, each read answering exactly what it would have answered on its
own, an entry delivered serving one read of its key on its thread, and a failure failing both
reads once, as the resilient decorators count it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import uuid4

import pytest
import redis

from adapters import redis as redis_store
from adapters.caching.read_ahead import NOTHING, ReadAhead
from adapters.caching.resilient import CacheUnavailable, CircuitBreaker, ResilientCache
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.redis.connection import make_client
from adapters.redis.session_state import RedisUserStateStore
from adapters.redis.tag_cache import RedisTagCache
from domain.session_state.model import StateUnavailable
from tests.contracts.session_state.conftest import full_state
from tests.support.backends import OnRedis, on_redis
from tests.support.redis import Sent, recording

KEY, TAGS = "user.1", ("user", "user.1")


@dataclass
class Stores:
    ahead: ReadAhead
    cache: RedisTagCache
    states: RedisUserStateStore
    alone: tuple[RedisTagCache, RedisUserStateStore]  # the same data, read without the read ahead
    redis: OnRedis


@pytest.fixture
def stores() -> Iterator[Stores]:
    with on_redis("ahead") as keys:
        ahead = ReadAhead()
        cache = RedisTagCache(keys.client, keys.prefix, ahead=ahead)
        states = RedisUserStateStore(keys.client, keys.prefix, read_along=cache)
        alone = RedisTagCache(keys.other, keys.prefix), RedisUserStateStore(keys.other, keys.prefix)
        cache.get("warm")  # this thread's connection, made (CLIENT SETINFO, SELECT) before any count
        yield Stores(ahead, cache, states, alone, keys)
        ahead.clear()


def round_trips(sent: Sent) -> int:
    """Round trips but the script loads: another test's SCRIPT FLUSH (the outage tests) makes
    the server ask for a script again (NOSCRIPT, SCRIPT LOAD, EVALSHA once more)."""
    return sent.round_trips - 2 * sent.commands.count("SCRIPT")


def store_entry(cache: RedisTagCache, value: bytes = b"the user") -> None:
    assert cache.set(KEY, value, ttl=60, versions=cache.tag_versions(KEY, TAGS))


@pytest.mark.parametrize("entry", ["stored", "absent", "invalidated"])
@pytest.mark.parametrize("with_state", [True, False])
def test_the_state_and_the_wanted_entry_come_in_one_round_trip_as_read_alone(
    stores, faker, entry, with_state
):
    state = full_state(faker)
    if with_state:
        stores.states.write(state)
    if entry != "absent":
        store_entry(stores.cache)
    if entry == "invalidated":
        stores.cache.invalidate("user.1")
    cache_alone, states_alone = stores.alone
    expected = states_alone.read(state.user_id, reader="test"), cache_alone.get(KEY)
    stores.ahead.want(KEY)
    with recording(stores.redis.recorder) as sent:
        found = stores.states.read(state.user_id, reader="test"), stores.cache.get(KEY)
    assert found == expected
    assert (found[0] is not None, found[1] is not None) == (with_state, entry == "stored")
    assert round_trips(sent) == 1
    assert set(sent.commands) <= {"EVALSHA", "SCRIPT"}


def test_without_a_wanted_entry_a_state_read_reads_only_the_state(stores, faker):
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache)
    with recording(stores.redis.recorder) as sent:
        stores.states.read(state.user_id, reader="test")
        stores.cache.get(KEY)
    assert round_trips(sent) == 2


def test_an_entry_is_wanted_by_one_state_read_only(stores, faker):
    first, second = full_state(faker), full_state(faker)
    stores.states.write(first)
    stores.states.write(second)
    stores.ahead.want(KEY)
    with recording(stores.redis.recorder) as sent:
        stores.states.read(first.user_id, reader="test")
        stores.states.read(second.user_id, reader="test")
    assert round_trips(sent) == 2
    assert stores.cache.ahead.take(KEY) is None  # what the first read delivered: no entry


def test_a_delivered_entry_serves_one_read_of_its_key_only(stores, faker):
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache, b"before")
    stores.ahead.want(KEY)
    stores.states.read(state.user_id, reader="test")
    store_entry(stores.alone[0], b"after")  # another worker's write, after the read along
    taken = stores.cache.get(KEY)
    assert taken is not None and taken.value == b"before"  # the read along's moment
    again = stores.cache.get(KEY)
    assert again is not None and again.value == b"after"  # from the server


def test_a_delivered_entry_is_not_taken_by_a_read_of_another_key(stores, faker):
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache)
    stores.ahead.want(KEY)
    stores.states.read(state.user_id, reader="test")
    assert stores.cache.get("user.2") is None
    with recording(stores.redis.recorder) as sent:
        assert stores.cache.get(KEY) is not None
    assert round_trips(sent) == 1  # the delivery went with the other key's read


def test_a_delivered_entry_belongs_to_its_thread(stores, faker):
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache)
    stores.ahead.want(KEY)
    stores.states.read(state.user_id, reader="test")
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(stores.cache.ahead.take(KEY)))
    thread.start()
    thread.join()
    assert elsewhere == [NOTHING]
    assert stores.cache.ahead.take(KEY) is not None  # still there for its own thread


def test_an_entry_read_along_before_another_threads_invalidation_is_not_taken(stores, faker):
    """Another thread's invalidation (a write, or a failed one retried) lands between the read
    along and the cache's read: the entry delivered is from before it, so the read asks again."""
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache)
    stores.ahead.want(KEY)
    stores.states.read(state.user_id, reader="test")
    other = threading.Thread(target=stores.cache.invalidate, args=("user.1",))
    other.start()
    other.join()
    assert stores.cache.get(KEY) is None


@pytest.mark.parametrize(
    "write",
    [
        lambda cache: cache.invalidate("user.1"),
        lambda cache: cache.delete(KEY),
        lambda cache: cache.set("user.2", b"x", ttl=60, versions={}),
    ],
    ids=["invalidate", "delete", "set"],
)
def test_a_write_through_the_cache_drops_what_was_read_ahead(stores, faker, write):
    state = full_state(faker)
    stores.states.write(state)
    store_entry(stores.cache)
    stores.ahead.want(KEY)
    stores.states.read(state.user_id, reader="test")
    write(stores.cache)
    with recording(stores.redis.recorder) as sent:
        stores.cache.get(KEY)
    assert round_trips(sent) == 1


def test_a_failed_read_along_fails_both_reads_once_through_the_resilient_stores(monkeypatch):
    client = make_client("redis://127.0.0.1:1/0", socket_timeout=0.2)  # nothing listens there
    ahead, breaker = ReadAhead(), CircuitBreaker(3, 5.0)
    cache = RedisTagCache(client, "x:", ahead=ahead)
    states = RedisUserStateStore(client, "x:", read_along=cache)
    cached = ResilientCache(cache, errors=redis_store.ERRORS, breaker=breaker)
    stated = ResilientUserStateStore(states, errors=redis_store.ERRORS, breaker=breaker)

    def no_second_call(key: str) -> None:
        raise AssertionError("the cache read its entry again")

    monkeypatch.setattr(cache, "_read", no_second_call)
    ahead.want(KEY)
    with pytest.raises(StateUnavailable):
        stated.read(uuid4(), reader="test")
    with pytest.raises(CacheUnavailable) as failed:
        cached.get(KEY)
    assert isinstance(failed.value.__cause__, redis.ConnectionError)
    assert breaker.state == "closed"  # two failures of three
    ahead.clear()


def test_a_read_along_needs_the_cache_on_the_same_client(stores):
    with pytest.raises(ValueError, match="same client"):
        RedisUserStateStore(stores.redis.other, stores.redis.prefix, read_along=stores.cache)


def test_an_entry_the_script_cannot_read_fails_the_entry_alone(stores, faker):
    """An entry in another layout (a deploy under way) is the cache's error, as it is when the
    cache reads it alone; the session check still gets its state."""
    state = full_state(faker)
    stores.states.write(state)
    stores.redis.other.set(stores.redis.prefix + KEY, b"\x00\x05short")
    with pytest.raises(redis.ResponseError):
        stores.alone[0].get(KEY)
    stores.ahead.want(KEY)
    assert stores.states.read(state.user_id, reader="test") == stores.alone[1].read(state.user_id, reader="x")
    with pytest.raises(redis.ResponseError):
        stores.cache.get(KEY)


def test_a_store_releases_the_lease_in_the_same_step(stores):
    assert stores.cache.acquire(KEY, 5.0)
    with recording(stores.redis.recorder) as sent:
        assert stores.cache.set(KEY, b"loaded", ttl=60, versions=stores.cache.tag_versions(KEY, TAGS))
        stores.cache.release(KEY)
    assert round_trips(sent) == 2  # the snapshot, and the store with the release
    assert stores.alone[0].acquire(KEY, 5.0)  # free for the next holder


def test_a_store_by_a_holder_whose_lease_expired_leaves_the_next_holders_alone(stores):
    """One process, two threads: the first holder's lease expires during its load, a second
    thread takes it; the first one's store must not release the second's lease."""
    assert stores.cache.acquire(KEY, 0.05)
    time.sleep(0.1)
    taken: list[bool] = []
    other = threading.Thread(target=lambda: taken.append(stores.cache.acquire(KEY, 5.0)))
    other.start()
    other.join()
    assert taken == [True]
    stores.cache.set(KEY, b"late", ttl=60, versions=stores.cache.tag_versions(KEY, TAGS))
    stores.cache.release(KEY)
    assert not stores.alone[0].acquire(KEY, 5.0)  # still the second thread's
