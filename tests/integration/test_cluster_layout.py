# Over 200 lines: the Cluster layout's claims, each shown on the tests' Cluster, a move included.
"""The read cache and the session state on Redis Cluster (adapters.redis.cluster_stores, decision
0008), what their contract suites cannot see: every key of one user in one slot, the read along
one round trip for the caller's own record and two for another group's, the versions a store
creates and keeps, the fence per slot group, and a slot moved under a cached entry whose tag
version has not moved yet: refused, never a stale hit."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from redis.crc import key_slot

from adapters.caching import keys
from adapters.caching.read_ahead import ReadAhead
from adapters.redis import cluster_stores
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.cluster_stores import ClusterTagCache, ClusterUserStateStore
from adapters.redis.fence import EPOCH
from domain.session_state.model import AccountStatus, Identity, UserState, Versioned
from tests.support.cluster import Cluster, redis_cluster
from tests.support.redis import delete_prefixed


@pytest.fixture
def prefix(cluster: Cluster) -> Iterator[str]:
    prefix = f"test:layout:{secrets.token_hex(6)}:"
    yield prefix
    for port in cluster.ports:
        server = cluster.server(port)
        delete_prefixed(server, prefix, each=True)
        server.close()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[ClusterClient]:
    client = ClusterClient(cluster.url(), socket_timeout=5)
    yield client
    client.close()


def user_in(group: str) -> UUID:
    """A user id whose slot group is `group`."""
    while True:
        user_id = uuid4()
        if keys.slot_group(keys.user(user_id)) == group:
            return user_id


def all_keys(cluster: Cluster, prefix: str) -> dict[bytes, int]:
    """Every key under `prefix` on every master, and the slot it is in."""
    found = {}
    for port in cluster.ports:
        server = cluster.server(port)
        found.update({key: key_slot(key) for key in server.scan_iter(match=prefix + "*")})
        server.close()
    return found


def state_of(user_id: UUID, version: int = 1) -> UserState:
    return UserState(user_id, identity=Versioned(version, Identity("a@example.org", AccountStatus.ACTIVE)))


def put(cache: ClusterTagCache, key: str, value: bytes, tags: list[str]) -> None:
    assert cache.set(key, value, ttl=60, versions=cache.tag_versions(key, tags))


def test_a_users_entry_tag_version_state_and_epoch_share_one_slot(cluster, client, prefix):
    cache = ClusterTagCache(client, prefix)
    states = ClusterUserStateStore(client, prefix)
    user_id = uuid4()
    key = keys.user(user_id)
    put(cache, key, b"v1", list(keys.user_tags(user_id)))
    states.write(state_of(user_id))
    cache.invalidate(key)

    slots = all_keys(cluster, prefix)
    group = keys.slot_group(key)
    mine = {name: slot for name, slot in slots.items() if name.startswith(f"{prefix}{{{group}}}".encode())}
    names = {name.decode().partition("}")[2] for name in mine}
    assert {key, f"{key}:v", "user:v", keys.user_state(user_id), "~epoch:v", "~epoch:replid"} <= names
    assert len(set(mine.values())) == 1, mine


def test_the_read_along_is_one_script_for_the_callers_own_record_and_two_for_another_group(client, prefix):
    ahead = ReadAhead()
    cache = ClusterTagCache(client, prefix, ahead=ahead)
    states = ClusterUserStateStore(client, prefix, read_along=cache)
    me = uuid4()
    other = user_in(next(g for g in keys.SLOT_GROUPS if g != keys.slot_group(keys.user(me))))
    for user_id in (me, other):
        put(cache, keys.user(user_id), str(user_id).encode(), list(keys.user_tags(user_id)))
        states.write(state_of(user_id))

    calls = []
    real = cluster_stores.run

    def counted(*args):
        calls.append(args[2])
        return real(*args)

    cluster_stores.run = counted
    try:
        for target, scripts in ((me, 1), (other, 2)):
            calls.clear()
            ahead.want(keys.user(target))
            assert states.read(me, reader="test") is not None
            assert cache.get(keys.user(target)).value == str(target).encode()
            ahead.clear()
            assert len(calls) == scripts, (target == me, len(calls))
    finally:
        cluster_stores.run = real


def test_a_store_creates_the_versions_it_records_for_as_long_as_the_entry_and_an_invalidation_keeps_them(
    cluster, client, prefix
):
    cache = ClusterTagCache(client, prefix)
    user_id = uuid4()
    key = keys.user(user_id)
    assert cache.set(key, b"v", ttl=30, versions=cache.tag_versions(key, list(keys.user_tags(user_id))))
    at = f"{prefix}{{{keys.slot_group(key)}}}"
    server = cluster.server(cluster.owner(key_slot(at.encode())))
    try:
        assert server.get(f"{at}{key}:v") == b"0"
        assert 25_000 < server.pttl(f"{at}{key}:v") <= 30_000
        assert server.pttl(f"{at}user:v") > 25_000

        cache.invalidate(key)
        assert server.get(f"{at}{key}:v") == b"1"
        assert server.pttl(f"{at}{key}:v") == -1  # moved on: it must never vanish
        assert server.pttl(f"{at}user:v") > 25_000  # untouched
    finally:
        server.close()


def test_a_missing_version_refuses_the_entry(cluster, client, prefix):
    cache = ClusterTagCache(client, prefix)
    put(cache, "user.1", b"v1", ["user", "user.1"])
    at = f"{prefix}{{{keys.slot_group('user.1')}}}"
    server = cluster.server(cluster.owner(key_slot(at.encode())))
    try:
        assert cache.get("user.1").value == b"v1"
        server.delete(f"{at}user.1:v")
        assert cache.get("user.1") is None  # on one server it would read as 0, and match
    finally:
        server.close()


def test_a_snapshot_or_a_tag_of_another_group_is_refused_as_a_mistake(client, prefix):
    cache = ClusterTagCache(client, prefix)
    one, two = uuid4(), uuid4()
    while keys.slot_group(keys.user(two)) == keys.slot_group(keys.user(one)):
        two = uuid4()
    snapshot = cache.tag_versions(keys.user(one), list(keys.user_tags(one)))
    with pytest.raises(ValueError, match="another slot group"):
        cache.set(keys.user(two), b"x", ttl=60, versions=snapshot)
    with pytest.raises(ValueError, match="lives in slot group"):
        cache.tag_versions(keys.user(one), [keys.user(two)])
    assert cache.tag_versions(keys.user(one), ["user", "user.email", "anything"])  # shared: any group


def test_the_fence_renews_the_epoch_of_a_group_whose_replication_id_changed(cluster, client, prefix):
    """As after a promotion: the group's entries and states are refused, the other groups' kept;
    on the connections the client already has (a Cluster demotes and promotes a master without
    ending them): every read fences its group."""
    cache = ClusterTagCache(client, prefix)
    states = ClusterUserStateStore(client, prefix)
    one, two = uuid4(), uuid4()
    while keys.slot_group(keys.user(two)) == keys.slot_group(keys.user(one)):
        two = uuid4()
    for user_id in (one, two):
        put(cache, keys.user(user_id), b"cached", list(keys.user_tags(user_id)))
        states.write(state_of(user_id))
    at = f"{prefix}{{{keys.slot_group(keys.user(one))}}}"
    server = cluster.server(cluster.owner(key_slot(at.encode())))
    before = cache.tag_versions(keys.user(one), ["user"])[EPOCH]
    server.set(f"{at}~epoch:replid", "another history")
    server.close()

    assert cache.get(keys.user(one)) is None
    assert states.read(one, reader="test") is None
    assert cache.tag_versions(keys.user(one), ["user"])[EPOCH] != before
    assert cache.get(keys.user(two)).value == b"cached"
    assert states.read(two, reader="test") is not None


# --- a slot on the move: a Cluster of the module's own ------------------------------------------


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with redis_cluster(tmp_path_factory.mktemp("moving")) as started:
        yield started


def test_a_slot_on_the_move_is_a_miss_never_a_stale_entry_nor_an_error(moving: Cluster):
    """The entry records its tag at 0; the tag is invalidated (1); the slot starts to move and
    the entry and the user's state reach the target first. A read sent there (ASK) finds the
    entry and not its versions: a miss, never the entry. What meets keys split between the two
    masters (TRYAGAIN) is not an error either, which would count towards switching the cache
    off: a snapshot that no store takes, a store not made, a state write that deletes the
    entry instead."""
    client = ClusterClient(moving.url(), socket_timeout=5)
    cache = ClusterTagCache(client, "layout:")
    states = ClusterUserStateStore(client, "layout:")
    key = "user.1"
    user_id = user_in(keys.slot_group(key))
    states.write(state_of(user_id))
    at = f"layout:{{{keys.slot_group(key)}}}"
    slot = key_slot(at.encode())
    source = moving.owner(slot)
    target = next(port for port in moving.ports if port != source)
    put(cache, key, b"stale", ["user", key])
    cache.invalidate(key)  # the entry is now stale: its tag moved on to 1

    source_server, target_server = moving.server(source), moving.server(target)
    try:
        target_server.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", moving.node_id(source))
        source_server.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", moving.node_id(target))
        for name in (key, f"{key}:v", keys.user_state(user_id)):  # not `user:v`, nor the epoch
            source_server.execute_command("MIGRATE", "127.0.0.1", target, at + name, 0, 5000)

        assert cache.get(key) is None  # the entry is on the target, `user:v` and the epoch not
        snapshot = cache.tag_versions(key, ["user", key])
        assert snapshot[EPOCH] == 0  # no group's: no store takes it
        assert cache.acquire(key, ttl=30)  # a reader's lease, taken on the target (ASK)
        assert cache.set(key, b"x", ttl=60, versions=snapshot) is False
        cache.release(key)
        assert cache.acquire(key, ttl=30), "the lease must be released, not left for its TTL"
        cache.release(key)
        assert states.read(user_id, reader="test") is None
        assert states.write(state_of(user_id, version=2)) == frozenset()  # as a logout would
    finally:
        while names := source_server.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
            source_server.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *names)
        for port in [target, source, *(p for p in moving.ports if p not in (target, source))]:
            server = moving.server(port)
            server.execute_command("CLUSTER", "SETSLOT", slot, "NODE", moving.node_id(target))
            server.close()
        source_server.close()
        target_server.close()

    assert cache.get(key) is None  # moved whole: still stale, still refused
    # The refused write kept its version: a slower writer, with what it read before, is refused.
    assert states.write(state_of(user_id, version=1)) == frozenset()
    kept = states.read(user_id, reader="test")
    assert kept is None or not kept.groups(), kept  # versions only: no value to serve
    assert states.write(state_of(user_id, version=2))
    assert states.read(user_id, reader="test").identity.version == 2
    put(cache, key, b"fresh", ["user", key])
    assert cache.get(key).value == b"fresh"
    client.close()
