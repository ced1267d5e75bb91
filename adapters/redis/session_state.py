# Over 200 lines: its Lua scripts and the store that runs them belong together (one script per operation).
"""A UserStateStore on Redis: one hash per user, one round trip per read and per write.

The hash at `prefix + keys.user_state(user_id)` holds, per group `g`, the encoded value in field
`g` and its version in `g:v` (decimal), the entry's creation time in `~created` (ms; no group
name starts with "~"), and the server's epoch it was written under in `~epoch` (the tag cache's,
at `prefix + "~epoch:v"`). Each operation is one Lua script, so a write's compare-and-set of
every group it carries is atomic, and a read slides the expiry in the same step that fetches
the groups.

An entry of another epoch is absent to a read, and a write finds only its versions: the fence
(adapters.redis.fence) renews the epoch when the server may have lost acknowledged writes (a
promoted replica), and a session removed there must not be found live again; the versions it
keeps still refuse a writer slower than what the promoted server did receive.

A read may also read one tag cache entry in the same script, for the HTTP hot path (see
`read_along`): one round trip for a request's session check and its cached answer.

The read along touches the tag cache's keys too; like the tag cache, this store runs on one
Redis server, or a Sentinel group's master (adapters.redis.connection).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import redis

from adapters.caching import keys, metrics
from adapters.caching import state_codec as codec
from adapters.redis.fence import EPOCH_KEY, install_fence
from adapters.redis.tag_cache import GET_ENTRY, RedisTagCache, ThreadScript
from domain.session_state.model import ABSOLUTE_TTL, SLIDING_TTL, Group, UserState, Versioned

# keep_versions(key, epoch): what to do with an entry of another epoch, whose values may be
# older than what the database wrote since (a promoted replica missed the writes): drop every
# group's value, keep its version, which still bounds what a slow writer may store (every
# version came from a committed state), and stamp the entry with the current epoch.
KEEP_VERSIONS = """
local function keep_versions(key, epoch)
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if string.sub(name, 1, 1) ~= '~' and string.sub(name, -2) ~= ':v' then redis.call('HDEL', key, name) end
  end
  redis.call('HSET', key, '~epoch', epoch)
end
"""

# KEYS[1] entry, KEYS[2] the epoch; ARGV[1] now (ms), ARGV[2] TTL of a new entry (ms), then per
# group: name, version, value. Returns the names of the groups written. An entry of another
# epoch keeps only its versions first (keep_versions).
# older(a, b): is version a older than b? Both are decimals without leading zeros below 2**63.
# Lua's numbers are doubles, which cannot tell 2**62 - 1 from 2**62, so equal lengths compare
# their high and low digits apart, each exact as a double.
OLDER = """
local function older(a, b)
  if #a ~= #b then return #a < #b end
  local high_a, high_b = tonumber(string.sub(a, 1, -10)) or 0, tonumber(string.sub(b, 1, -10)) or 0
  if high_a ~= high_b then return high_a < high_b end
  return tonumber(string.sub(a, -9)) < tonumber(string.sub(b, -9))
end
"""

WRITE = (
    KEEP_VERSIONS
    + OLDER
    + """
local epoch = redis.call('GET', KEYS[2]) or ''
if redis.call('HGET', KEYS[1], '~epoch') ~= epoch and redis.call('EXISTS', KEYS[1]) == 1 then
  keep_versions(KEYS[1], epoch)
end
local fields = {}
for i = 3, #ARGV, 3 do fields[#fields + 1] = ARGV[i] .. ':v' end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local new = redis.call('EXISTS', KEYS[1]) == 0
local written = {}
for j = 1, #fields do
  local name, version = ARGV[3 * j], ARGV[3 * j + 1]
  if not stored[j] or not older(version, stored[j]) then
    redis.call('HSET', KEYS[1], name, ARGV[3 * j + 2], name .. ':v', version)
    written[#written + 1] = name
  end
end
if new then
  redis.call('HSET', KEYS[1], '~created', ARGV[1], '~epoch', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return written
"""
)

# read_state(key, epoch key, now (ms), sliding TTL (ms), absolute TTL (ms)): HGETALL's flat
# list, or false when there is no entry (or it is past its absolute TTL: then it is dropped; or
# of another epoch: then it keeps only its versions, keep_versions); slides the expiry.
READ_STATE = (
    KEEP_VERSIONS
    + """
local function read_state(key, epoch_key, now, sliding, absolute)
  local fields = redis.call('HGETALL', key)
  if #fields == 0 then return false end
  local ttl, epoch = tonumber(sliding), false
  for i = 1, #fields, 2 do
    if fields[i] == '~created' then
      ttl = math.min(ttl, tonumber(fields[i + 1]) + tonumber(absolute) - tonumber(now))
    elseif fields[i] == '~epoch' then
      epoch = fields[i + 1]
    end
  end
  if ttl <= 0 then
    redis.call('DEL', key)
    return false
  end
  local current = redis.call('GET', epoch_key) or ''
  if epoch ~= current then
    keep_versions(key, current)
    return false
  end
  redis.call('PEXPIRE', key, ttl)
  return fields
end
"""
)
# KEYS[1] entry, KEYS[2] the epoch; ARGV[1] now (ms), ARGV[2] sliding TTL (ms), ARGV[3] absolute
# TTL (ms).
READ = READ_STATE + "return read_state(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"


def read_along_script(missing: str, first: str = "") -> str:
    """The read along (adapters.caching.read_ahead): KEYS[1] the state, KEYS[2] the epoch, KEYS[3]
    a tag cache entry; ARGV as _READ's, then ARGV[4] the tag cache's prefix. Returns {state,
    entry}; an entry the cache's script cannot read (another layout) is an error reply for the
    entry alone. `missing`: what a version key that does not exist reads as (GET_ENTRY's);
    `first`: Lua run before the reads (Cluster's fence)."""
    return (
        READ_STATE
        + GET_ENTRY
        + first
        + f"""
local state = read_state(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
local ok, entry = pcall(get_entry, KEYS[3], ARGV[4], {missing})
if not ok then entry = redis.error_reply(tostring(entry)) end
return {{state, entry}}
"""
    )


_FIELDS = {group: (group.value.encode(), f"{group.value}:v".encode()) for group in Group}


def decode(user_id: UUID, reply: Any, reader: str) -> UserState | None:
    """The state a read script's reply holds (HGETALL's flat list; nothing, or only retired
    groups: no state), counted."""
    groups = {}
    if reply:
        fields = dict(zip(reply[::2], reply[1::2], strict=True))
        for group, (value_field, version_field) in _FIELDS.items():
            if value_field in fields and version_field in fields:
                value = codec.decode_cached(group, fields[value_field])
                if value is not codec.HOLLOW:  # a retired group reads as missing
                    groups[group.value] = Versioned(int(fields[version_field]), value)
    metrics.USER_STATE_READS.labels(reader, "hit" if groups else "miss").inc()
    return UserState(user_id, **groups) if groups else None


def write_args(state: UserState, now: int, ttl: int) -> list[str | int | bytes]:
    """WRITE's ARGV for `state` (its groups given), at `now` (ms), a new entry living `ttl` (ms)."""
    args: list[str | int | bytes] = [now, ttl]
    for group, versioned in state.groups().items():
        version = codec.check_version(versioned.version)
        args += (group.value, str(version), codec.encode(group, versioned.value))
    return args


def written(state: UserState, reply: Any) -> frozenset[Group]:
    """The groups of `state` WRITE's reply says it wrote, counted."""
    names = frozenset(Group(name.decode()) for name in reply)
    for group in state.groups():
        metrics.USER_STATE_WRITES.labels(group.value, "written" if group in names else "refused").inc()
    return names


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisUserStateStore:
    """`now` comes from `clock` (this host's time), not the server's TIME: creation time and
    every read then use one clock source that tests can drive, and the scripts stay
    deterministic. Clock skew between workers only moves the absolute cap by the skew (the
    sliding TTL is relative, run by the server's PEXPIRE).

    With `read_along`, a tag cache on the same client, a read also reads the entry its read
    ahead wants, in the same script, and delivers it there (adapters.caching.read_ahead)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "us:",
        *,
        clock: Callable[[], float] = time.time,
        sliding_ttl: float = SLIDING_TTL,
        absolute_ttl: float = ABSOLUTE_TTL,
        read_along: RedisTagCache | None = None,
    ) -> None:
        if client.get_encoder().decode_responses:
            raise ValueError("RedisUserStateStore needs a client with decode_responses=False")
        if read_along is not None and read_along.client is not client:
            raise ValueError("a read along needs the tag cache on the same client")
        if sliding_ttl <= 0 or absolute_ttl <= 0:
            raise ValueError("TTLs must be positive")
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._epoch = (prefix + EPOCH_KEY).encode()
        install_fence(client, prefix)
        self._sliding = _millis(sliding_ttl)
        self._absolute = _millis(absolute_ttl)
        self._read = ThreadScript(client, READ)
        self._lengths = (str(self._sliding).encode(), str(self._absolute).encode())
        self._write = client.register_script(WRITE)
        self._along = read_along
        self._read_along = ThreadScript(client, read_along_script("'0'"))

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        now = b"%d" % int(self._clock() * 1000)
        key = self._key(user_id).encode()
        wanted = self._along.ahead.take_wanted() if self._along is not None else None
        if wanted is None:
            reply = self._read([key, self._epoch], [now, *self._lengths])
        else:
            reply = self._read_with(wanted, key, now)
        return decode(user_id, reply, reader)

    def _read_with(self, wanted: tuple[str, int], key: bytes, now: bytes) -> Any:
        """The state's reply, the entry `wanted` read along and delivered (or the error)."""
        assert self._along is not None
        prefix = self._along.prefix

        def read(entry_key: str) -> Any:
            return self._read_along(
                [key, self._epoch, (prefix + entry_key).encode()], [now, *self._lengths, prefix.encode()]
            )

        return self._along.ahead.read_along(wanted, read)

    def write(self, state: UserState) -> frozenset[Group]:
        if not state.groups():
            return frozenset()
        args = write_args(state, int(self._clock() * 1000), min(self._sliding, self._absolute))
        return written(state, self._write(keys=[self._key(state.user_id), self._epoch], args=args))

    def delete(self, user_id: UUID) -> None:
        self._client.delete(self._key(user_id))

    def _key(self, user_id: UUID) -> str:
        return self._prefix + keys.user_state(user_id)
