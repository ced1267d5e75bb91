"""One contract for UserStateStore, run against the in-memory and the Redis adapter (field-group
compare-and-set, sliding and absolute expiry, concurrent owners), then what only Redis adds
(one round trip, the stored layout) and ResilientUserStateStore in front of a failing store."""

from __future__ import annotations

import random
import secrets
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import redis
from prometheus_client import REGISTRY

from adapters.caching import keys
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.caching.state_codec import hollow_state
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.redis.connection import make_client
from adapters.redis.session_state import RedisUserStateStore
from domain.session_state.model import (
    TOMBSTONE,
    AccountStatus,
    Group,
    Identity,
    LiveSession,
    Roles,
    Sessions,
    StateUnavailable,
    SubscriptionSummary,
    UserState,
    Versioned,
)
from tests.contracts.session_state.conftest import Backend, full_state

READER = "contract"


def value_for(group: Group, version: int):
    """A value that tells which version it was written with."""
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=version % 10**12)
    return {
        Group.IDENTITY: Identity(f"v{version}@example.com", AccountStatus.ACTIVE),
        Group.SESSIONS: Sessions({UUID(int=version): LiveSession(f"v{version}", moment)}, moment),
        Group.ROLES: Roles(frozenset({f"v{version}"})),
        Group.SUBSCRIPTION: SubscriptionSummary(f"v{version}", "active"),
    }[group]


def state(user_id: UUID, **versions: int) -> UserState:
    """UserState(user_id, identity=3, roles=5, ...) with value_for's values."""
    groups = {name: Versioned(v, value_for(Group(name), v)) for name, v in versions.items()}
    return UserState(user_id, **groups)


def versions(found: UserState | None) -> dict[str, int]:
    assert found is not None
    return {group.value: versioned.version for group, versioned in found.groups().items()}


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- values and versions --------------------------------------------------------------------


def test_an_absent_entry_reads_as_none(backend: Backend):
    assert backend.store.read(uuid4(), reader=READER) is None


def test_every_group_round_trips_with_its_datetimes_and_session_ids(backend: Backend, faker):
    written = full_state(faker, version=7)

    assert backend.store.write(written) == frozenset(Group)
    found = backend.store.read(written.user_id, reader=READER)

    assert found == written and found.complete
    sessions = found.sessions.value
    assert all(isinstance(sid, UUID) for sid in sessions.live)
    moments = [sessions.last_login_at, *(s.expires_at for s in sessions.live.values())]
    assert all(m.utcoffset() == timedelta(0) for m in moments)


@pytest.mark.parametrize(
    "value",
    [None, SubscriptionSummary("free", "trialing", None)],
    ids=["no-subscription", "no-period-end"],
)
def test_empty_values_round_trip(backend: Backend, value):
    written = UserState(uuid4(), sessions=Versioned(1, Sessions()), subscription=Versioned(2, value))
    backend.store.write(written)
    assert backend.store.read(written.user_id, reader=READER) == written


def test_a_partial_write_creates_the_entry(backend: Backend):
    user_id = uuid4()
    assert backend.store.write(state(user_id, roles=4)) == {Group.ROLES}

    found = backend.store.read(user_id, reader=READER)

    assert versions(found) == {"roles": 4} and not found.complete
    assert found.roles.value == value_for(Group.ROLES, 4)


def test_a_write_of_some_groups_leaves_the_others_untouched(backend: Backend):
    user_id = uuid4()
    backend.store.write(state(user_id, identity=1, sessions=1, roles=1, subscription=1))
    written = backend.store.write(state(user_id, sessions=2, subscription=5))

    assert written == {Group.SESSIONS, Group.SUBSCRIPTION}

    found = backend.store.read(user_id, reader=READER)
    assert versions(found) == {"identity": 1, "sessions": 2, "roles": 1, "subscription": 5}
    assert found.identity.value == value_for(Group.IDENTITY, 1)
    assert found.sessions.value == value_for(Group.SESSIONS, 2)


def test_an_older_group_is_refused_while_another_in_the_same_write_is_written(backend: Backend):
    user_id = uuid4()
    backend.store.write(state(user_id, identity=5, roles=5))

    assert backend.store.write(state(user_id, identity=4, roles=6)) == {Group.ROLES}

    found = backend.store.read(user_id, reader=READER)
    assert versions(found) == {"identity": 5, "roles": 6}
    assert found.identity.value == value_for(Group.IDENTITY, 5)


def test_an_equal_version_is_written_again(backend: Backend):
    user_id = uuid4()
    backend.store.write(state(user_id, identity=3))
    again = UserState(user_id, identity=Versioned(3, Identity("new@example.com", AccountStatus.DISABLED)))

    assert backend.store.write(again) == {Group.IDENTITY}
    assert backend.store.read(user_id, reader=READER).identity == again.identity


@pytest.mark.parametrize(
    ("stored", "given", "accepted"),
    [
        (TOMBSTONE, TOMBSTONE - 1, False),  # one apart where doubles cannot tell them apart
        (TOMBSTONE - 1, TOMBSTONE, True),
        (2**63 - 1, 2**63 - 2, False),
        (10**9, 999_999_999, False),  # 10 digits against 9
        (999_999_999, 10**9, True),
        (0, 0, True),
    ],
)
def test_versions_compare_exactly_up_to_2_to_the_63(backend: Backend, stored, given, accepted):
    user_id = uuid4()
    backend.store.write(state(user_id, identity=stored))

    assert backend.store.write(state(user_id, identity=given)) == ({Group.IDENTITY} if accepted else set())
    assert versions(backend.store.read(user_id, reader=READER)) == {"identity": max(stored, given)}


@pytest.mark.parametrize("version", [-1, 2**63, True, 1.0])
def test_a_version_outside_a_redis_integer_is_rejected(backend: Backend, version):
    with pytest.raises(ValueError):
        backend.store.write(UserState(uuid4(), roles=Versioned(version, Roles(frozenset()))))


def test_a_retired_group_reads_as_missing_and_keeps_refusing_older_writes(backend: Backend):
    """What the resilient store writes in place of a write it could not make (HOLLOW)."""
    store, user_id = backend.store, uuid4()
    store.write(state(user_id, identity=3, roles=2))

    assert store.write(hollow_state(user_id, {Group.IDENTITY: 3})) == {Group.IDENTITY}
    assert versions(store.read(user_id, reader=READER)) == {"roles": 2}
    assert store.write(state(user_id, identity=2)) == frozenset()  # a late, older write
    assert versions(store.read(user_id, reader=READER)) == {"roles": 2}
    assert store.write(state(user_id, identity=3)) == {Group.IDENTITY}  # the database's, filled in
    assert store.read(user_id, reader=READER) == state(user_id, identity=3, roles=2)
    assert store.write(hollow_state(user_id, {Group.IDENTITY: 3, Group.ROLES: 2})) == {
        Group.IDENTITY,
        Group.ROLES,
    }
    assert store.read(user_id, reader=READER) is None  # nothing but retired groups: no state


def test_delete_removes_the_entry_and_a_missing_one_is_no_error(backend: Backend):
    user_id = uuid4()
    backend.store.write(state(user_id, identity=1))
    backend.store.delete(user_id)
    backend.store.delete(user_id)
    assert backend.store.read(user_id, reader=READER) is None
    assert backend.store.write(state(user_id, identity=0)) == {Group.IDENTITY}  # versions went too


def test_reads_are_counted_per_reader_and_writes_per_group(backend: Backend):
    reader, user_id = f"test-{secrets.token_hex(4)}", uuid4()
    refused = counted("user_state_writes_total", group="identity", result="refused")
    backend.store.read(user_id, reader=reader)
    backend.store.write(state(user_id, identity=2))
    backend.store.write(state(user_id, identity=1))
    backend.store.read(user_id, reader=reader)
    backend.store.read(user_id, reader=reader)

    assert counted("user_state_reads_total", reader=reader, result="miss") == 1
    assert counted("user_state_reads_total", reader=reader, result="hit") == 2
    assert counted("user_state_writes_total", group="identity", result="refused") == refused + 1


# --- expiry (real time on Redis: TTLs of a fraction of a second) -----------------------------


def test_a_read_slides_the_expiry(backend: Backend):
    store, user_id = backend.make(sliding_ttl=0.4, absolute_ttl=60), uuid4()
    store.write(state(user_id, identity=1))
    backend.advance(0.25)
    assert store.read(user_id, reader=READER) is not None
    backend.advance(0.25)  # 0.5 s after the write: alive only because the read slid it
    assert store.read(user_id, reader=READER) is not None
    backend.advance(0.5)
    assert store.read(user_id, reader=READER) is None


def test_reads_never_slide_the_expiry_past_the_absolute_ttl(backend: Backend):
    # Seconds wide enough for a loaded machine: each read is 0.3 s inside both TTLs.
    store, user_id = backend.make(sliding_ttl=0.8, absolute_ttl=1.4), uuid4()
    store.write(state(user_id, identity=1))
    for _ in range(2):
        backend.advance(0.5)
        assert store.read(user_id, reader=READER) is not None
    backend.advance(0.6)  # 1.6 s: within the last read's sliding TTL, past the absolute one
    assert store.read(user_id, reader=READER) is None


def test_a_write_to_an_entry_does_not_extend_it_and_one_after_expiry_starts_afresh(backend: Backend):
    store, user_id = backend.make(sliding_ttl=0.4, absolute_ttl=60), uuid4()
    store.write(state(user_id, identity=5, roles=5))
    backend.advance(0.25)
    assert store.write(state(user_id, roles=6)) == {Group.ROLES}
    backend.advance(0.25)
    assert store.read(user_id, reader=READER) is None

    assert store.write(state(user_id, roles=1)) == {Group.ROLES}  # the old versions expired too
    assert versions(store.read(user_id, reader=READER)) == {"roles": 1}


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_writers_keep_the_newest_version_of_every_group(backend: Backend):
    user_id, threads, rounds = uuid4(), 8, 150
    newest: dict[Group, int] = dict.fromkeys(Group, -1)
    lock, errors, start = threading.Lock(), [], threading.Barrier(threads)

    def work(index: int) -> None:
        rng = random.Random(index)
        try:
            start.wait()
            for _ in range(rounds):
                groups = rng.sample(list(Group), rng.randint(1, len(Group)))
                # Random, not increasing: a lost update of the newest version stays visible.
                given = {g.value: rng.randrange(10**9) for g in groups}
                backend.store.write(state(user_id, **given))
                with lock:
                    for g in groups:
                        newest[g] = max(newest[g], given[g.value])
        except BaseException as error:  # reported by the test
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, inside the stores' critical sections too
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert not errors and not any(worker.is_alive() for worker in workers)

    found = backend.store.read(user_id, reader=READER)
    assert versions(found) == {g.value: v for g, v in newest.items()}
    for group, versioned in found.groups().items():  # each value went with its version
        assert versioned.value == value_for(group, versioned.version)


# --- Redis only -----------------------------------------------------------------------------
# On Redis alone and behind ResilientUserStateStore (any_redis_backend): the wrapper adds no
# command and no round trip. A client that decodes responses is refused by the adapter's own
# constructor, which the wrapper does not have.


def test_a_write_and_a_read_are_one_round_trip_each(any_redis_backend: Backend, faker):
    written = full_state(faker)
    any_redis_backend.store.read(written.user_id, reader=READER)  # loads the scripts
    any_redis_backend.store.write(state(uuid4(), roles=1))

    with any_redis_backend.recording() as write:
        any_redis_backend.store.write(written)
    with any_redis_backend.recording() as read:
        any_redis_backend.store.read(written.user_id, reader=READER)

    assert (write.commands, write.round_trips) == (["EVALSHA"], 1)
    assert (read.commands, read.round_trips) == (["EVALSHA"], 1)


def test_the_entry_is_one_hash_with_a_ttl(any_redis_backend: Backend):
    user_id, client = uuid4(), any_redis_backend.client
    key = any_redis_backend.prefix + keys.user_state(user_id)
    any_redis_backend.store.write(state(user_id, roles=TOMBSTONE, identity=3))

    fields = client.hgetall(key)

    assert set(fields) == {b"roles", b"roles:v", b"identity", b"identity:v", b"~created", b"~epoch"}
    assert (fields[b"roles:v"], fields[b"identity:v"]) == (str(TOMBSTONE).encode(), b"3")
    assert fields[b"~epoch"] == client.get(any_redis_backend.prefix + "~epoch:v")  # the fence's
    assert 0 < client.pttl(key) <= 30 * 60 * 1000


@pytest.mark.parametrize("found_by", ["read", "write"])
def test_an_entry_of_another_epoch_is_absent_and_keeps_only_its_versions(
    any_redis_backend: Backend, found_by: str
):
    """What the fence leaves behind a promotion (adapters.redis.fence): the values recorded under
    the old epoch are gone, their versions still refuse an older write."""
    user_id, client, store = uuid4(), any_redis_backend.client, any_redis_backend.store
    key = any_redis_backend.prefix + keys.user_state(user_id)
    store.write(state(user_id, roles=5, identity=3))
    client.set(any_redis_backend.prefix + "~epoch:v", secrets.randbelow(2**62) + 1)  # as FENCE renews it

    if found_by == "read":
        assert store.read(user_id, reader=READER) is None
    else:
        assert store.write(state(user_id, subscription=1)) == {Group.SUBSCRIPTION}
    fields = client.hgetall(key)
    assert b"roles" not in fields and b"identity" not in fields  # the old epoch's values
    assert (fields[b"roles:v"], fields[b"identity:v"]) == (b"5", b"3")  # their versions stay
    assert fields[b"~epoch"] == client.get(any_redis_backend.prefix + "~epoch:v")

    assert store.write(state(user_id, roles=4)) == frozenset()  # older than what was seen: refused
    assert store.write(state(user_id, roles=5, identity=3)) == {Group.ROLES, Group.IDENTITY}
    assert versions(store.read(user_id, reader=READER)) == {
        "roles": 5,
        "identity": 3,
        **({"subscription": 1} if found_by == "write" else {}),
    }


def test_a_client_that_decodes_responses_is_refused():
    with pytest.raises(ValueError):
        RedisUserStateStore(redis.Redis(decode_responses=True))


# --- ResilientUserStateStore ----------------------------------------------------------------


class Down(Exception):
    pass


class Flaky:
    """An InMemoryUserStateStore whose operations named in `failing` raise Down."""

    def __init__(self) -> None:
        self.inner = InMemoryUserStateStore()
        self.failing: set[str] = set()
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            if name in self.failing:
                raise Down(name)
            return method(*args, **kwargs)

        return call


def resilient(inner, **options) -> ResilientUserStateStore:
    defaults = {"errors": (Down,), "fail_max": 10, "reset_timeout": 0.2, "retry_interval": 0.02}
    return ResilientUserStateStore(inner, **{**defaults, **options})


def wait_until(condition, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_failed_read_raises_state_unavailable_and_the_open_circuit_stops_calling():
    flaky = Flaky()
    store = resilient(flaky, fail_max=2)
    flaky.failing.add("read")
    for _ in range(5):
        with pytest.raises(StateUnavailable):
            store.read(uuid4(), reader=READER)
    assert flaky.calls == ["read", "read"]


def test_a_failed_write_retires_the_groups_it_carried():
    flaky, user_id = Flaky(), uuid4()
    store = resilient(flaky)
    store.write(state(user_id, identity=1, roles=1))
    flaky.failing.add("write")

    assert store.write(state(user_id, identity=2)) == frozenset()
    assert store.pending_users == {user_id}  # the retirement is a write too: it failed as well
    with pytest.raises(StateUnavailable):
        store.read(user_id, reader=READER)  # the inner store would still serve identity 1

    flaky.failing.clear()
    assert wait_until(lambda: not store.pending_users)
    assert versions(store.read(user_id, reader=READER)) == {"roles": 1}  # identity: filled on use
    # The failed write, or an older one, run late by the server (it held them while paused):
    assert flaky.inner.write(state(user_id, identity=1)) == frozenset()
    assert store.write(state(user_id, identity=2)) == {Group.IDENTITY}


def test_a_failed_delete_stays_pending_and_hides_only_that_user_until_retried():
    flaky, user_id, other_id = Flaky(), uuid4(), uuid4()
    store = resilient(flaky)
    store.write(state(user_id, identity=1))
    store.write(state(other_id, identity=1))
    flaky.failing |= {"write", "delete"}

    assert store.write(state(user_id, identity=2)) == frozenset()
    store.delete(other_id)  # never raises either
    assert store.write(state(other_id, identity=3)) == frozenset()  # pending, and failing: no write

    assert store.pending_users == {user_id, other_id}
    for pending in (user_id, other_id):
        with pytest.raises(StateUnavailable):  # the inner store would still serve identity 1
            store.read(pending, reader=READER)
    flaky.failing.clear()
    unrelated = uuid4()
    store.write(state(unrelated, roles=1))
    assert versions(store.read(unrelated, reader=READER)) == {"roles": 1}

    assert wait_until(lambda: not store.pending_users)
    assert store.read(user_id, reader=READER) is None  # its one group retired at version 2
    assert store.read(other_id, reader=READER) is None  # deleted
    assert store.write(state(user_id, identity=4)) == {Group.IDENTITY}


def test_programming_errors_propagate():
    flaky = Flaky()
    store = resilient(flaky)
    with pytest.raises(TypeError):
        store.read(uuid4())  # no reader
    with pytest.raises(ValueError):
        store.write(state(uuid4(), identity=-1))
    assert store.breaker.state == "closed"


def test_against_a_redis_that_is_not_there():
    client = make_client("redis://127.0.0.1:1", socket_timeout=0.05)
    store = resilient(RedisUserStateStore(client), errors=(redis.RedisError,), retry_interval=60)
    user_id = uuid4()

    with pytest.raises(StateUnavailable):
        store.read(user_id, reader=READER)
    assert store.write(state(user_id, identity=1)) == frozenset()
    assert store.pending_users == {user_id}
    with pytest.raises(StateUnavailable):
        store.read(user_id, reader=READER)
