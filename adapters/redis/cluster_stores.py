# Over 200 lines: the tag cache and the session-state store on Cluster share its layout and scripts.
"""The tag cache and the session-state store on Redis Cluster: slot groups (decision 0008).

Every key a script touches must hash to one slot. So each key lives under `prefix{group}`, the
group (a Redis hash tag: two hex digits, 256 of them) being the one adapters.caching.keys names:
a user's entry, its tag's version and its session state share the group of the user's id, a
lookup by email and its tag that of the email's hash, the pages of the list and their tag
`user.collection` the collection's. A tag that entries of any group record (`user`,
`user.email`: shared) has a version in each group, and an entry records its own group's; the
service never invalidates those, and invalidating one increments all 256.

The scripts are those of one server (adapters.redis.tag_cache, adapters.redis.session_state),
sent through redis-py's cluster client, which finds each slot's master and follows MOVED, ASK
and TRYAGAIN. Two things differ, both for a slot on the move, whose keys are on two masters
until the last has moved:

* a tag version that does not exist is refused by a read, not read as 0 (`missing`): a read
  sent to the target of a move (ASK) finds the entry there while its versions may still be on
  the source, and a version never incremented would pass as current. So a store creates each
  version it records (0) and keeps it as long as the entry (PEXPIRE ... GT); an invalidation
  makes it permanent (PERSIST), as a version that moved on must never vanish. A store declares
  every key it touches, so Redis answers TRYAGAIN rather than run it on half of them.
* a script that reaches a key on the other node fails ("non local key"), and one whose declared
  keys are split between the two gets TRYAGAIN (redis-py tries it twice, then gives up): a read
  then is a miss, a snapshot one that no store takes and a store stores nothing, answered from
  the database; a session-state write keeps only the entry's versions, raised to the write's
  (one key, reached wherever it is), which still refuse a slower writer. Not an outage, which
  would count towards switching the cache off (the resilient decorators' breaker).

The epoch is per group, and every read fences its group first (adapters.redis.fence.
GROUP_FENCE): a Cluster demotes a master without ending the connections to it. The HTTP hot
path's authenticated hit on the caller's own record reads the state and the entry in one script,
as on one server (one round trip); a record of another group (an admin reading another user) is
read after the state, in a second.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import redis
from redis.cluster import RedisCluster

from adapters.caching import keys
from adapters.caching.read_ahead import NOTHING, ReadAhead
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.fence import EPOCH, EPOCH_KEY, GROUP_FENCE, REPLID_KEY
from adapters.redis.session_state import (
    KEEP_VERSIONS,
    OLDER,
    READ_STATE,
    WRITE,
    decode,
    read_along_script,
    write_args,
    written,
)
from adapters.redis.tag_cache import (
    GET_ENTRY,
    RELEASE,
    SET_ENTRY,
    Leases,
    pack_entry,
    unpack_entry,
)
from domain.session_state.model import ABSOLUTE_TTL, SLIDING_TTL, Group, UserState
from ports.tag_cache import CacheEntry, TagVersions

GROUP = "~group"  # in a snapshot: the slot group it was taken in (not a tag: never recorded)

# KEYS[1] entry; ARGV[1] its group's prefix. The group fenced first; a missing version refuses
# the entry.
FENCED_GET = (
    GROUP_FENCE + GET_ENTRY + "fence(ARGV[1] .. '~epoch:v', false)\nreturn get_entry(KEYS[1], ARGV[1], false)"
)
# SET_ENTRY, then each version the entry records made to outlive it: created (0) where missing,
# its expiry moved on where it has one shorter (GT: a permanent one stays so).
_SET = (
    "local function store()\n"
    + SET_ENTRY
    + """end
local stored = store()
if stored == 1 then
  for i = 3, #KEYS do
    if string.sub(KEYS[i], -8) ~= '~epoch:v' then  -- the epoch is the fence's, and permanent
      redis.call('SET', KEYS[i], '0', 'NX', 'PX', ARGV[2])
      redis.call('PEXPIRE', KEYS[i], ARGV[2], 'GT')
    end
  end
end
return stored
"""
)
# The session-state store's reads (adapters.redis.session_state), the group fenced first.
_READ = (
    GROUP_FENCE
    + READ_STATE
    + "fence(KEYS[2], false)\nreturn read_state(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"
)
_READ_ALONG = read_along_script("false", GROUP_FENCE + "fence(KEYS[2], false)\n")
# KEYS[1] the epoch, KEYS[2] its replication id, KEYS[3..] versions: the group fenced (its epoch
# created if it has none), then the epoch and each version (nil for one that does not exist).
_SNAPSHOT = GROUP_FENCE + "fence(KEYS[1], true)\nreturn redis.call('MGET', KEYS[1], unpack(KEYS, 3))"
# WRITE's, KEYS[3] the epoch's replication id: the group fenced first (its epoch created if it
# has none: a state written under no epoch would never be fenced).
_WRITE = GROUP_FENCE + "fence(KEYS[2], true)\n" + WRITE
# A state write refused by a slot on the move: KEYS[1] the state, ARGV as WRITE's. Keeps the
# versions, raised to the write's where older, drops every value and stamps no epoch ('', no
# group's), so that the next read is a miss and a slower writer is still refused. One key: it
# follows the key wherever it is (ASK), never refused (TRYAGAIN).
_FORGET = (
    KEEP_VERSIONS
    + OLDER
    + """
local new = redis.call('EXISTS', KEYS[1]) == 0
keep_versions(KEYS[1], '')
for i = 3, #ARGV, 3 do
  local field = ARGV[i] .. ':v'
  local stored = redis.call('HGET', KEYS[1], field)
  if not stored or older(stored, ARGV[i + 1]) then redis.call('HSET', KEYS[1], field, ARGV[i + 1]) end
end
if new then
  redis.call('HSET', KEYS[1], '~created', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
"""
)


def _at(prefix: str, group: str) -> str:
    """What every key of `group` starts with: the prefix, then the group's hash tag."""
    return f"{prefix}{{{group}}}"


def _group_prefix(prefix: str, name: str) -> str:
    return _at(prefix, keys.slot_group(name))


class ClusterTagCache:
    """A TagCache on Redis Cluster (see the module's text); its API is RedisTagCache's."""

    def __init__(
        self,
        cluster: ClusterClient,
        prefix: str = "us:",
        *,
        clock: Callable[[], float] = time.time,
        ahead: ReadAhead | None = None,
    ) -> None:
        self._cluster = cluster
        self._prefix = prefix
        self._clock = clock
        self._ahead = ahead or ReadAhead()
        self._leases = Leases()
        self._scripts: dict[str, Any] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def cluster(self) -> ClusterClient:
        return self._cluster

    @property
    def ahead(self) -> ReadAhead:
        return self._ahead

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        if not tags:
            return {}
        group = keys.slot_group(key)
        _check_homes(key, group, tags)
        at = _at(self._prefix, group)
        names = [at + EPOCH_KEY, at + REPLID_KEY, *(at + tag + ":v" for tag in tags)]
        try:
            epoch, *found = self._run(_SNAPSHOT, names, [])
        except redis.RedisError as error:
            if not on_the_move(error):
                raise
            epoch, found = 0, [None] * len(tags)  # epoch 0 is no group's: no store takes it
        versions = {tag: int(v) if v is not None else 0 for tag, v in zip(tags, found, strict=True)}
        versions[EPOCH] = int(epoch or 0)
        versions[GROUP] = int(group, 16)
        return versions

    def get(self, key: str) -> CacheEntry | None:
        try:
            blob = self._ahead.take(key)
            if blob is NOTHING:
                at = _group_prefix(self._prefix, key)
                blob = self._run(FENCED_GET, [at + key], [at])
        except redis.RedisError as error:
            if not on_the_move(error):
                raise
            return None  # a miss, not an outage: answered from the database
        if blob is None:
            return None
        return unpack_entry(blob)

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        self._ahead.clear()
        group = keys.slot_group(key)
        recorded = dict(versions)
        taken_in = recorded.pop(GROUP, None)
        if taken_in is not None and taken_in != int(group, 16):
            raise ValueError(f"the snapshot was taken for another slot group than {key!r}'s")
        _check_homes(key, group, recorded)
        millis = _millis(ttl)
        blob = pack_entry(value, expires_at=self._clock() + ttl, delta=delta, versions=recorded)
        leases = self._leases.tokens
        token = leases.get(key, "")
        at = _at(self._prefix, group)
        names = [at + key, at + key + ":lease", *(at + tag + ":v" for tag in recorded)]
        args = [blob, b"%d" % millis, token.encode(), *(b"%d" % int(v) for v in recorded.values())]
        try:
            stored = bool(self._run(_SET, names, args))
        except redis.RedisError as error:
            if not on_the_move(error):
                raise
            return False  # not now: the slot is on the move; the lease is left to `release`
        leases.pop(key, None)
        return stored

    def invalidate(self, *tags: str) -> None:
        self._ahead.clear()
        # Each version moved on and made permanent: PERSIST first, so that it cannot expire
        # between the two (then a store could make it again at 0 and match an entry recorded
        # before), and again after, for a version a store made between the two. Plain commands:
        # redis-py's cluster pipeline sends them to each master in one round trip (a script in
        # it would cost a COMMAND GETKEYS round trip to one node each).
        pipe = self._cluster.client.pipeline(transaction=False)
        for tag in dict.fromkeys(tags):
            home = keys.home_group(tag)
            for group in keys.SLOT_GROUPS if home is None else (home,):
                version = f"{_at(self._prefix, group)}{tag}:v"
                pipe.persist(version).incr(version).persist(version)
        pipe.execute()
        self._ahead.invalidated()

    def delete(self, *names: str) -> None:
        self._ahead.clear()
        if names:
            self._cluster.client.delete(*(_group_prefix(self._prefix, key) + key for key in names))
            self._ahead.invalidated()

    def acquire(self, key: str, ttl: float) -> bool:
        token = secrets.token_hex(16)
        lease = _group_prefix(self._prefix, key) + key + ":lease"
        if self._cluster.client.set(lease, token, nx=True, px=_millis(ttl)):
            self._leases.tokens[key] = token
            return True
        return False

    def release(self, key: str) -> None:
        token = self._leases.tokens.pop(key, None)
        if token is not None:
            self._run(RELEASE, [_group_prefix(self._prefix, key) + key + ":lease"], [token])

    def _run(self, source: str, names: Sequence[str], args: Sequence[Any]) -> Any:
        return run(self._cluster.client, self._scripts, source, names, args)


class ClusterUserStateStore:
    """A UserStateStore on Redis Cluster (see the module's text): RedisUserStateStore's hash and
    scripts, under the group of the user's id; `read_along`, a ClusterTagCache on the same
    client, reads the hot path's entry along when it is in that group too."""

    def __init__(
        self,
        cluster: ClusterClient,
        prefix: str = "us:",
        *,
        clock: Callable[[], float] = time.time,
        sliding_ttl: float = SLIDING_TTL,
        absolute_ttl: float = ABSOLUTE_TTL,
        read_along: ClusterTagCache | None = None,
    ) -> None:
        if read_along is not None and read_along.cluster is not cluster:
            raise ValueError("a read along needs the tag cache on the same client")
        if sliding_ttl <= 0 or absolute_ttl <= 0:
            raise ValueError("TTLs must be positive")
        self._cluster = cluster
        self._prefix = prefix
        self._clock = clock
        self._sliding = _millis(sliding_ttl)
        self._absolute = _millis(absolute_ttl)
        self._lengths = (b"%d" % self._sliding, b"%d" % self._absolute)
        self._along = read_along
        self._scripts: dict[str, Any] = {}

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        now = b"%d" % int(self._clock() * 1000)
        name = keys.user_state(user_id)
        at = _group_prefix(self._prefix, name)
        state_keys = [at + name, at + EPOCH_KEY]
        along = self._along
        wanted = along.ahead.take_wanted() if along is not None else None
        try:
            if along is None or wanted is None or _group_prefix(along.prefix, wanted[0]) != at:
                reply = self._run(_READ, state_keys, [now, *self._lengths])  # the entry: on its own
            else:

                def read(entry_key: str) -> Any:
                    return self._run(_READ_ALONG, [*state_keys, at + entry_key], [now, *self._lengths, at])

                reply = along.ahead.read_along(wanted, read)
        except redis.RedisError as error:
            if not on_the_move(error):
                raise
            reply = None  # a miss, not an outage: loaded from the database
        return decode(user_id, reply, reader)

    def write(self, state: UserState) -> frozenset[Group]:
        if not state.groups():
            return frozenset()
        name = keys.user_state(state.user_id)
        at = _group_prefix(self._prefix, name)
        args = write_args(state, int(self._clock() * 1000), min(self._sliding, self._absolute))
        try:
            return written(state, self._run(_WRITE, [at + name, at + EPOCH_KEY, at + REPLID_KEY], args))
        except redis.RedisError as error:
            if not on_the_move(error):
                raise
        # Not now: the entry may be older than what was to be written, so its values go and its
        # versions take the write's (_FORGET), which still refuse a slower writer.
        self._run(_FORGET, [at + name], args)
        return frozenset()

    def delete(self, user_id: UUID) -> None:
        name = keys.user_state(user_id)
        self._cluster.client.delete(_group_prefix(self._prefix, name) + name)

    def _run(self, source: str, names: Sequence[str], args: Sequence[Any]) -> Any:
        return run(self._cluster.client, self._scripts, source, names, args)


def run(
    client: RedisCluster, shas: dict[str, Any], source: str, names: Sequence[str], args: Sequence[Any]
) -> Any:
    """EVALSHA of `source` on the master of its keys' slot (redis-py routes it by the first
    key); loaded there first when that master lacks it (a new or restarted node)."""
    sha = shas.get(source)
    if sha is None:
        sha = shas[source] = hashlib.sha1(source.encode()).hexdigest()  # what SCRIPT LOAD answers
    try:
        return client.evalsha(sha, len(names), *names, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(source, len(names), *names, *args)  # and EVAL caches it on that node


def on_the_move(error: redis.RedisError) -> bool:
    """Whether a script met a slot on the move: its declared keys split between the source and
    the target (TRYAGAIN, which redis-py retries, then gives up on: "TTL exhausted", as after
    redirections that never settle), or a key it derives found on the other node ("non local
    key")."""
    if isinstance(error, redis.exceptions.TryAgainError):
        return True
    if isinstance(error, redis.exceptions.ClusterError):
        return "TTL exhausted" in str(error)
    return isinstance(error, redis.ResponseError) and "non local key" in str(error)


def _check_homes(key: str, group: str, tags: Sequence[str] | TagVersions) -> None:
    """Each tag an entry records is shared or homed in the entry's own group: its version must be
    where the entry's reads check it (adapters.caching.keys.home_group)."""
    for tag in tags:
        home = keys.home_group(tag)
        if home is not None and home != group:
            raise ValueError(f"tag {tag!r} lives in slot group {home}, not in that of {key!r} ({group})")


def _millis(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError("ttl must be positive")
    return max(1, math.ceil(seconds * 1000))
