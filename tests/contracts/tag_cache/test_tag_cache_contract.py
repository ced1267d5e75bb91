"""One contract for TagCache, run against the in-memory and the Redis adapter: what the read
caches may rely on (DESIGN §5, I6), whichever store is behind them."""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from adapters.memory.tag_cache import InMemoryTagCache
from adapters.redis.tag_cache import RedisTagCache
from tests.contracts.tag_cache.conftest import Backend
from tests.support.clock import SettableClock
from tests.support.redis import kill_own_connections, redis_client

USER = ["user", "user.1"]


def put(backend: Backend, key: str, value: bytes, tags=(), ttl: float = 60, **kw) -> None:
    """Stores the way a reader does: versions first, then the (here: given) value."""
    versions = backend.cache.tag_versions(key, list(tags))
    assert backend.cache.set(key, value, ttl=ttl, versions=versions, **kw)


def run_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b'{"id": 1}', b"", bytes(range(256)) * 64])
def test_set_then_get_returns_the_bytes_delta_and_expiry(backend: Backend, value: bytes):
    before = backend.now()
    put(backend, "user.1", value, USER, ttl=60, delta=0.125)

    entry = backend.cache.get("user.1")

    assert entry is not None and entry.value == value and isinstance(entry.value, bytes)
    assert entry.delta == 0.125
    assert before + 60 <= entry.expires_at <= backend.now() + 60


def test_a_key_never_set_is_a_miss(backend: Backend):
    assert backend.cache.get("user.404") is None


def test_set_replaces_the_value_and_other_handles_see_it(backend: Backend):
    put(backend, "user.1", b"old", USER)
    put(backend, "user.1", b"new", USER)

    assert backend.cache.get("user.1").value == b"new"
    assert backend.peer.get("user.1").value == b"new"


def test_an_entry_without_tags_is_stored(backend: Backend):
    assert backend.cache.set("stats", b"42", ttl=60, versions={})
    assert backend.cache.get("stats").value == b"42"


def test_ttl_must_be_positive(backend: Backend):
    with pytest.raises(ValueError):
        backend.cache.set("user.1", b"x", ttl=0, versions={})
    with pytest.raises(ValueError):
        backend.cache.acquire("user.1", ttl=-1)


def test_an_entry_expires_after_its_ttl(backend: Backend):
    put(backend, "user.1", b"short", USER, ttl=0.2)
    put(backend, "user.2", b"long", ["user"], ttl=60)
    assert backend.cache.get("user.1") is not None

    backend.advance(0.35)

    assert backend.cache.get("user.1") is None
    assert backend.cache.get("user.2").value == b"long"


def test_delete_removes_only_the_given_keys(backend: Backend):
    for key in ("user.1", "user.2", "user.3"):
        put(backend, key, key.encode(), ["user"])

    backend.cache.delete("user.1", "user.2", "user.404")
    backend.cache.delete()

    assert backend.cache.get("user.1") is None and backend.cache.get("user.2") is None
    assert backend.cache.get("user.3").value == b"user.3"


# --- tags -----------------------------------------------------------------------------------


def tags_only(versions: dict[str, int]) -> dict[str, int]:
    """The tag versions of a snapshot, without the adapter's own entries (Redis: the epoch)."""
    return {tag: version for tag, version in versions.items() if not tag.startswith("~")}


def test_tag_versions_start_at_zero_and_grow_with_each_invalidation(backend: Backend):
    assert backend.cache.tag_versions("user.1", []) == {}
    assert tags_only(backend.cache.tag_versions("user.1", ["user", "user.1"])) == {"user": 0, "user.1": 0}

    backend.cache.invalidate("user.1")
    backend.peer.invalidate("user.1", "user")

    assert tags_only(backend.cache.tag_versions("user.1", ["user", "user.1"])) == {"user": 1, "user.1": 2}


def test_invalidating_a_tag_hides_every_key_carrying_it_and_no_other(backend: Backend):
    put(backend, "user.1", b"1", ["user", "user.1"])
    put(backend, "user.2", b"2", ["user", "user.2"])
    put(backend, "user.collection.a", b"page", ["user.collection"])

    backend.peer.invalidate("user")

    assert backend.cache.get("user.1") is None and backend.cache.get("user.2") is None
    assert backend.cache.get("user.collection.a").value == b"page"


@pytest.mark.parametrize(
    "tag", ["user", "user.email", "user.email.é:ü", "x" * 300], ids=["user", "email", "non-ascii", "long"]
)
def test_any_one_of_several_tags_hides_the_entry(backend: Backend, tag: str):
    tags = ["user", "user.email", "user.email.é:ü", "x" * 300]
    put(backend, "user.email.é:ü", b"found", tags)
    backend.cache.invalidate("unrelated")
    assert backend.cache.get("user.email.é:ü").value == b"found"

    backend.cache.invalidate(tag)

    assert backend.cache.get("user.email.é:ü") is None


def test_no_stale_set_a_value_read_before_an_invalidation_is_refused(backend: Backend):
    """I6 as one interleaving: reader takes versions, writer commits and invalidates (another
    worker), reader's set is refused and the next read misses."""
    put(backend, "user.1", b"v1", USER)
    versions = backend.cache.tag_versions("user.1", USER)  # reader, before reading the database
    backend.cache.delete("user.1")  # (e.g. evicted or expired meanwhile)

    backend.peer.invalidate("user.1")  # writer: committed v2

    assert backend.cache.set("user.1", b"v1", ttl=60, versions=versions) is False
    assert backend.cache.get("user.1") is None
    assert backend.peer.get("user.1") is None


def test_a_set_with_versions_taken_after_the_invalidation_is_stored(backend: Backend):
    stale = backend.cache.tag_versions("user.1", USER)
    backend.cache.invalidate("user")
    assert not backend.cache.set("user.1", b"v1", ttl=60, versions=stale)

    fresh = backend.cache.tag_versions("user.1", USER)
    assert backend.cache.set("user.1", b"v2", ttl=60, versions=fresh)

    assert backend.cache.get("user.1").value == b"v2"


def test_a_set_with_versions_the_tags_never_had_is_refused(backend: Backend):
    assert not backend.cache.set("user.1", b"x", ttl=60, versions={"user": 3})
    assert backend.cache.get("user.1") is None


def test_readers_and_writers_in_threads_never_see_a_value_older_than_the_last_write(backend: Backend):
    """I6 under load: once a writer's invalidation returned, no read returns an older value."""
    keys = [f"item.{i}" for i in range(4)]
    database = dict.fromkeys(keys, 0)
    published = dict.fromkeys(keys, 0)  # newest value whose invalidation has returned
    lock = threading.Lock()
    operations = 2000 if backend.name == "memory" else 150
    hits = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        cache = backend.cache if index % 2 else backend.peer
        for _ in range(operations):
            key = rng.choice(keys)
            if index % 4 == 0:  # writer: commit, invalidate, then publish
                with lock:
                    database[key] += 1
                    written = database[key]
                cache.invalidate(key)
                with lock:
                    published[key] = max(published[key], written)
                continue
            with lock:
                floor = published[key]
            entry = cache.get(key)
            if entry is not None:
                hits.append(1)
                assert int(entry.value) >= floor, f"{key}: read {entry.value}, wrote {floor}"
                continue
            versions = cache.tag_versions(key, ["item", key])
            with lock:
                value = database[key]
            time.sleep(0)  # let a writer in between the read and the set
            cache.set(key, str(value).encode(), ttl=60, versions=versions)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        errors = run_threads(8, worker)
    finally:
        sys.setswitchinterval(interval)

    assert not errors, errors[:3]
    assert hits, "the readers never hit: the test exercised nothing"


# --- leases ---------------------------------------------------------------------------------


def test_a_lease_has_one_holder_across_handles(backend: Backend):
    assert backend.cache.acquire("user.1", ttl=5)
    assert not backend.peer.acquire("user.1", ttl=5)
    assert not backend.cache.acquire("user.1", ttl=5)
    assert backend.peer.acquire("user.2", ttl=5)


def test_a_lease_has_one_holder_across_threads(backend: Backend):
    """Threads on the same handle and on another handle race for one lease."""
    won = []

    def race(index: int) -> None:
        cache = backend.cache if index % 2 else backend.peer
        if cache.acquire("user.1", ttl=5):
            won.append(index)

    assert not run_threads(8, race)
    assert len(won) == 1


def test_a_lease_expires(backend: Backend):
    assert backend.cache.acquire("user.1", ttl=0.2)
    backend.advance(0.35)
    assert backend.peer.acquire("user.1", ttl=5)


def test_only_the_holder_releases_a_lease(backend: Backend):
    assert backend.cache.acquire("user.1", ttl=5)

    backend.peer.release("user.1")
    assert not backend.peer.acquire("user.1", ttl=5)

    backend.cache.release("user.1")
    assert backend.peer.acquire("user.1", ttl=5)


def test_releasing_an_expired_lease_leaves_the_next_holders_alone(backend: Backend):
    assert backend.cache.acquire("user.1", ttl=0.2)
    backend.advance(0.35)
    assert backend.peer.acquire("user.1", ttl=5)

    backend.cache.release("user.1")  # late: its lease expired and was taken

    assert not backend.cache.acquire("user.1", ttl=5)


def test_a_lease_does_not_touch_the_entry(backend: Backend):
    put(backend, "user.1", b"v1", USER)
    assert backend.cache.acquire("user.1", ttl=5)
    backend.cache.release("user.1")
    backend.cache.release("user.1")  # twice, and never taken: nothing happens
    backend.cache.release("user.2")
    assert backend.cache.get("user.1").value == b"v1"


# --- invalidation cost ----------------------------------------------------------------------


def fill(backend: Backend, tag: str, count: int) -> None:
    for i in range(count):
        key = f"{tag}.{i}"
        assert backend.cache.set(key, b"v", ttl=60, versions=backend.cache.tag_versions(key, [tag]))


def test_redis_invalidation_sends_one_incr_however_many_keys_carry_the_tag(any_redis_backend: Backend):
    fill(any_redis_backend, "narrow", 1)
    fill(any_redis_backend, "wide", 2000)
    any_redis_backend.client.ping()  # the pooled connection made (and fenced) before counting

    with any_redis_backend.recording() as narrow:
        any_redis_backend.cache.invalidate("narrow")
    with any_redis_backend.recording() as wide:
        any_redis_backend.cache.invalidate("wide")
    with any_redis_backend.recording() as two:
        any_redis_backend.cache.invalidate("wide", "narrow")

    assert narrow.commands == wide.commands == ["INCRBY"]
    assert narrow.round_trips == wide.round_trips == two.round_trips == 1
    assert two.commands == ["INCRBY", "INCRBY"]
    assert all(any_redis_backend.cache.get(f"wide.{i}") is None for i in range(0, 2000, 97))


def test_in_memory_invalidation_time_does_not_grow_with_the_keys_carrying_the_tag(memory_backend: Backend):
    fill(memory_backend, "narrow", 1)
    fill(memory_backend, "wide", 20_000)

    def median_ns(tag: str) -> float:
        samples = []
        for _ in range(301):
            start = time.perf_counter_ns()
            for _ in range(20):
                memory_backend.cache.invalidate(tag)
            samples.append(time.perf_counter_ns() - start)
        return statistics.median(samples)

    median_ns("narrow")  # warm up
    assert median_ns("wide") < 5 * median_ns("narrow")  # O(keys) would be ~10,000 times


# --- Redis specifics ------------------------------------------------------------------------
# On Redis alone and behind ResilientCache (any_redis_backend): the wrapper adds no command and
# no round trip. The two tests without a backend are the adapter's own, by design: a client
# that decodes responses is refused by its constructor, and a server that is down is its error,
# which the wrapper turns into CacheUnavailable (tests/unit/test_resilient_cache.py).


def test_redis_reads_are_one_round_trip_and_writes_one_script(any_redis_backend: Backend):
    cache = any_redis_backend.cache
    put(any_redis_backend, "user.1", b"v1", USER)
    cache.get("user.1")  # scripts loaded

    with any_redis_backend.recording() as hit:
        assert cache.get("user.1") is not None
    with any_redis_backend.recording() as miss:
        assert cache.get("user.2") is None
    with any_redis_backend.recording() as versions:
        cache.tag_versions("user.1", USER)
    with any_redis_backend.recording() as stored:
        cache.set("user.1", b"v2", ttl=60, versions=cache.tag_versions("user.1", USER))

    assert hit.commands == miss.commands == ["EVALSHA"]
    assert stored.commands == ["EVALSHA", "EVALSHA"] and stored.round_trips == 2  # snapshot, store
    assert versions.commands == ["EVALSHA"] and versions.round_trips == 1  # the epoch too


def test_redis_refuses_a_snapshot_taken_before_the_server_lost_its_data(any_redis_backend: Backend):
    """A restart that empties Redis resets every version to 0; the epoch tells the snapshots
    apart. Here: snapshot, the write's invalidation lands, the server loses everything, and the
    reader's store of what it read before the write must still be refused."""
    cache, client, prefix = any_redis_backend.cache, any_redis_backend.client, any_redis_backend.prefix
    before = cache.tag_versions("user.1", USER)
    cache.invalidate("user.1")
    for key in client.scan_iter(match=prefix + "*"):  # what a restart without persistence does
        client.delete(key)
    assert tags_only(cache.tag_versions("user.1", USER)) == tags_only(before)  # the versions alone match
    assert not cache.set("user.1", b"stale", ttl=60, versions=before)
    assert cache.get("user.1") is None
    assert cache.set("user.1", b"fresh", ttl=60, versions=cache.tag_versions("user.1", USER))


def test_redis_keys_are_prefixed_entries_expire_and_versions_do_not(any_redis_backend: Backend):
    client, prefix = any_redis_backend.client, any_redis_backend.prefix
    put(any_redis_backend, "user.1", b"v1", USER, ttl=30)
    any_redis_backend.cache.invalidate("user")
    any_redis_backend.cache.acquire("user.1", ttl=5)

    keys = {key.decode() for key in client.scan_iter(match=prefix + "*")}

    epoch = {f"{prefix}~epoch:v", f"{prefix}~epoch:replid"}  # the fence's (adapters.redis.fence)
    assert keys == {f"{prefix}user.1", f"{prefix}user:v", f"{prefix}user.1:lease", *epoch}
    assert 29_000 < client.pttl(f"{prefix}user.1") <= 30_000
    assert client.pttl(f"{prefix}user:v") == -1
    assert 0 < client.pttl(f"{prefix}user.1:lease") <= 5_000


def test_redis_prefixes_keep_caches_apart(any_redis_backend: Backend):
    other = RedisTagCache(any_redis_backend.client, any_redis_backend.prefix + "other:")
    put(any_redis_backend, "user.1", b"mine", USER)

    other.invalidate("user")

    assert other.get("user.1") is None
    assert any_redis_backend.cache.get("user.1").value == b"mine"


def test_redis_cache_refuses_a_client_that_decodes_responses():
    client = redis_client(decode_responses=True)
    try:
        with pytest.raises(ValueError):
            RedisTagCache(client)
    finally:
        client.close()


def test_redis_down_is_an_error_not_a_miss():
    """The caller decides how to degrade (DESIGN §5 outage); the adapter does not hide it."""
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    dead = RedisTagCache(client, "x:")
    with pytest.raises(redis.ConnectionError):
        dead.get("user.1")


# --- in-memory specifics --------------------------------------------------------------------


def test_in_memory_max_entries_evicts_the_least_recently_used():
    cache = InMemoryTagCache(SettableClock(), max_entries=2)
    for key in ("a", "b"):
        cache.set(key, key.encode(), ttl=60, versions={})
    cache.get("a")

    cache.set("c", b"c", ttl=60, versions={})

    assert cache.get("b") is None
    assert cache.get("a").value == b"a" and cache.get("c").value == b"c"


def test_in_memory_store_stays_bounded_by_pruning_dead_entries():
    clock = SettableClock()
    cache = InMemoryTagCache(clock)
    for round_ in range(10):
        for i in range(5000):
            cache.set(f"k.{round_}.{i}", b"v", ttl=1, versions={})
        clock.now += 2  # everything stored so far has expired, and nobody reads it

    assert len(cache._store.entries) <= 2 * 5000 + 1024  # not visible in the port


def test_in_memory_cache_survives_many_threads_mixing_every_operation():
    clock = SettableClock()
    cache = InMemoryTagCache(clock, max_entries=50)
    handles = [cache, cache.share_store()]

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine = handles[index % 2]
        for _ in range(3000):
            key, tag = f"k.{rng.randrange(80)}", f"t.{rng.randrange(5)}"
            match rng.randrange(7):
                case 0:
                    mine.invalidate(tag)
                case 1:
                    mine.delete(key)
                case 2:
                    if mine.acquire(key, ttl=1):
                        mine.release(key)
                case 3:
                    clock.now += 0.01
                case _:
                    entry = mine.get(key)
                    if entry is None:
                        mine.set(key, key.encode(), ttl=1, versions=mine.tag_versions(key, [tag]))
                    else:
                        assert entry.value == key.encode()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        errors = run_threads(16, worker)
    finally:
        sys.setswitchinterval(interval)

    assert not errors, errors[:3]
    assert len(cache._store.entries) <= 50  # the bound is not visible in the port


def test_redis_reads_survive_a_script_flush_and_a_dropped_connection(any_redis_backend: Backend):
    cache, client = any_redis_backend.cache, any_redis_backend.client
    put(any_redis_backend, "user.1", b"v1", USER)
    assert cache.get("user.1").value == b"v1"
    client.script_flush()  # as after a restart or failover: the read script is gone
    assert cache.get("user.1").value == b"v1"
    assert kill_own_connections(client) >= 1  # this process's connections, the cache's among them
    assert cache.get("user.1").value == b"v1"


def test_redis_reads_from_many_threads_each_get_their_own_answer(any_redis_backend: Backend):
    for i in range(8):
        put(any_redis_backend, f"user.{i}", f"v{i}".encode(), ["user", f"user.{i}"])
    errors: list[str] = []

    def read(i: int) -> None:
        for _ in range(200):
            entry = any_redis_backend.cache.get(f"user.{i}")
            if entry is None or entry.value != f"v{i}".encode():
                errors.append(f"thread {i} read {entry}")

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_redis_reads_from_many_short_lived_threads_never_exhaust_the_pool(any_redis_backend: Backend):
    put(any_redis_backend, "user.1", b"v1", USER)
    results: list[bytes | None] = []
    for _ in range(150):  # more threads than redis-py's default max_connections (100)
        thread = threading.Thread(target=lambda: results.append(any_redis_backend.cache.get("user.1").value))
        thread.start()
        thread.join()
    assert results == [b"v1"] * 150
