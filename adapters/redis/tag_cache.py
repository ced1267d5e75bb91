# Over 200 lines: its Lua scripts, and the per-thread connection they run on, belong together.
"""A TagCache on Redis: versioned tags, one round trip per read, Lua for the compare-and-set.

An entry is one string value: a header then the raw value bytes, expired by Redis (PEXPIRE):

    >H header length | >d expires_at | >d delta | >B tag count
    per tag: >H name length, name (UTF-8) | >B version length, version (decimal ASCII)

Lua's `struct` reads it in place (cheaper than cjson, and no copy of the value); versions are
kept as the decimal strings INCR produces so the script compares strings without converting.

Tag version keys never expire: a version that vanished would read as 0 again and could revive an
entry recorded under an older 0 or under a reused number. They are tiny (one per tag ever
invalidated); run Redis with a volatile-* eviction policy (or none) so that only entries, which
all carry a TTL, are evicted.

A server that restarts empty resets every version to 0 all the same, and a reader that took its
snapshot before the restart, and loaded before a write whose invalidation the old server took,
could then store its stale value. So every snapshot also records the server's *epoch*, a random
number under `prefix + "~epoch:v"`; it is checked like a tag version by both scripts. The fence
(adapters.redis.fence) sets a new epoch whenever the server has another replication history (a
restart without data, a promoted replica that may have missed invalidations), so no entry
recorded before is served after.

One Redis server, or a Sentinel group's master (adapters.redis.connection): the scripts derive
keys they do not declare (an entry's tag versions), and the per-thread connections are made
from the client's pool, which a Cluster client lacks.
"""

from __future__ import annotations

import math
import os
import secrets
import struct
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.sentinel import SentinelConnectionPool

from adapters.caching.read_ahead import NOTHING, ReadAhead
from adapters.redis.fence import EPOCH, install_fence, new_epoch
from ports.tag_cache import CacheEntry, TagVersions

_HEAD = struct.Struct(">HddB")
_TAG_NAME = struct.Struct(">H")
_VERSION_SUFFIX = ":v"
_LEASE_SUFFIX = ":lease"

# get_entry(key, prefix, missing): the stored blob only while every recorded tag version is
# still current; the version keys are derived here so a hit stays one round trip. A version key
# that does not exist reads as `missing`: '0' on one server (a tag never invalidated), false on
# Cluster, where it is refused (adapters.redis.cluster_stores). (Also run by the session-state
# store's read along: adapters.redis.session_state.)
GET_ENTRY = """
local function get_entry(key, prefix, missing)
  local blob = redis.call('GET', key)
  if not blob then return false end
  local n = struct.unpack('>B', blob, 19)
  if n == 0 then return blob end
  local pos, names, versions = 20, {}, {}
  for i = 1, n do
    names[i], versions[i], pos = struct.unpack('>Hc0Bc0', blob, pos)
    names[i] = prefix .. names[i] .. ':v'
  end
  local current = redis.call('MGET', unpack(names))
  for i = 1, n do
    if (current[i] or missing) ~= versions[i] then return false end
  end
  return blob
end
"""
# KEYS[1] entry; ARGV[1] prefix.
_GET = GET_ENTRY + "return get_entry(KEYS[1], ARGV[1], '0')"

# KEYS[1] entry, KEYS[2] its lease, KEYS[3..] version keys; ARGV[1] blob, ARGV[2] ttl ms,
# ARGV[3] the lease's token ("" for none), ARGV[4..] snapshot. Stores unless a version moved on,
# and releases the lease if the token still holds it, in the same step. Returns 1 when stored.
SET_ENTRY = """
local stored = 1
if #KEYS > 2 then
  local current = redis.call('MGET', unpack(KEYS, 3))
  for i = 1, #KEYS - 2 do
    if (current[i] or '0') ~= ARGV[i + 3] then stored = 0 break end
  end
end
if stored == 1 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return stored
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] the epoch's key, KEYS[2..] version keys; ARGV[1] an epoch for a server that has none
# (one flushed since the fence ran).
# Returns the epoch, then each version (nil for one never incremented: 0).
SNAPSHOT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('MGET', unpack(KEYS))
"""

_forks = 0  # forks of this process so far: a child must not use its parent's sockets


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


_threads: weakref.WeakKeyDictionary[redis.Redis, threading.local] = weakref.WeakKeyDictionary()


def thread_connection(client: redis.Redis) -> redis.Connection:
    """This thread's own connection to the client's server, shared by every script run on that
    client: made like the pool's own, but outside its count (max_connections), and living as
    long as the thread."""
    local = _threads.get(client)
    if local is None:  # setdefault is one step of the underlying dict: threads agree on one
        local = _threads.setdefault(client, threading.local())
    pool = client.connection_pool
    if getattr(local, "forks", None) != _forks:  # a new thread, or a forked worker
        local.connection = pool.connection_class(**pool.connection_kwargs)
        local.forks = _forks
        local.follows = isinstance(pool, SentinelConnectionPool)
    elif local.follows and cast(SentinelConnectionPool, pool).master_address not in (
        None,
        (local.connection.host, local.connection.port),
    ):
        # The pool learnt of a new master (a connection of its asked the sentinels) and dropped
        # its own connections to the old one: so does this thread's (see adapters.redis.fence).
        local.connection.disconnect()
    return local.connection


class ThreadScript:
    """A Lua script run with EVALSHA on the calling thread's own connection, the request
    encoded here. For the reads on every request's path: redis-py's pool checkout and command
    layer cost more client CPU than the round trip itself, while its Connection still does
    connecting, AUTH, SELECT, TLS, timeouts and reply parsing (hiredis). A dropped connection
    is retried once, at once, as the pooled client does."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = client.register_script(source).sha.encode()

    def __call__(self, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        parts = [b"EVALSHA", self.sha, b"%d" % len(keys), *keys, *args]
        return self.send(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts))

    def send(self, request: bytes) -> Any:
        """Send an EVALSHA of this script already encoded (RESP) and return the reply, as
        parsed by the connection (untyped: its shape is the script's)."""
        for attempt in range(3):
            try:
                connection = thread_connection(self._client)
                connection.send_packed_command([request], check_health=False)
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                self._client.script_load(self._source)  # a restarted or flushed server
            except redis.ConnectionError:
                if attempt:
                    raise
        raise redis.ConnectionError("the script could not be loaded")


class Leases(threading.local):
    """This thread's leases, key to token: a thread releases only what it took (another thread
    may hold the same key's lease after this thread's expired)."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}


def pack_entry(value: bytes, *, expires_at: float, delta: float, versions: TagVersions) -> bytes:
    """The stored form of an entry (see the module docstring)."""
    if len(versions) > 255:
        raise ValueError("at most 255 tags per entry")
    parts: list[bytes] = []
    for tag, version in versions.items():
        name = tag.encode()
        digits = str(int(version)).encode()
        parts += (_TAG_NAME.pack(len(name)), name, bytes((len(digits),)), digits)
    tags = b"".join(parts)
    return _HEAD.pack(_HEAD.size + len(tags), expires_at, delta, len(versions)) + tags + value


def unpack_entry(blob: bytes) -> CacheEntry:
    """The entry a stored form holds (see the module docstring)."""
    header_length, expires_at, delta, _ = _HEAD.unpack_from(blob)
    return CacheEntry(blob[header_length:], expires_at, delta)


def _millis(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    return max(1, math.ceil(ttl * 1000))


class RedisTagCache:
    """Every key is `prefix + key`; a tag's version lives at `prefix + tag + ":v"` and a key's
    lease at `prefix + key + ":lease"`. A lease belongs to the thread that took it (one token
    per key and thread, see `Leases`).
    A read takes the entry `ahead` holds for its key, if the session-state store read it along
    (see adapters.caching.read_ahead)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "us:",
        *,
        clock: Callable[[], float] = time.time,
        ahead: ReadAhead | None = None,
    ) -> None:
        if client.get_encoder().decode_responses:
            raise ValueError("RedisTagCache needs a client with decode_responses=False")
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._ahead = ahead or ReadAhead()
        install_fence(client, prefix)
        self._get = ThreadScript(client, _GET)
        self._set = ThreadScript(client, SET_ENTRY)
        self._release = ThreadScript(client, RELEASE)
        self._snapshot = ThreadScript(client, SNAPSHOT)
        self._leases = Leases()
        # The read request, pre-encoded but for the key (see `_read`).
        prefix_arg = prefix.encode()
        self._read_head = b"*5\r\n$7\r\nEVALSHA\r\n$40\r\n" + self._get.sha + b"\r\n$1\r\n1\r\n"
        self._read_tail = b"$%d\r\n%b\r\n" % (len(prefix_arg), prefix_arg)

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        if not tags:
            return {}
        keys = [self._version_key(EPOCH).encode(), *(self._version_key(tag).encode() for tag in tags)]
        epoch, *found = self._snapshot(keys, [new_epoch()])
        versions = {tag: int(v) if v is not None else 0 for tag, v in zip(tags, found, strict=True)}
        versions[EPOCH] = int(epoch or 0)
        return versions

    def get(self, key: str) -> CacheEntry | None:
        blob = self._ahead.take(key)
        if blob is NOTHING:
            blob = self._read(key)
        if blob is None:
            return None
        return unpack_entry(blob)

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        self._ahead.clear()
        millis = _millis(ttl)
        blob = pack_entry(value, expires_at=self._clock() + ttl, delta=delta, versions=versions)
        leases = self._leases.tokens
        token = leases.get(key, "")  # the lease this thread holds is released in the same step
        keys = [self._prefix + key, self._lease_key(key), *(self._version_key(tag) for tag in versions)]
        args = [b"%d" % millis, token.encode(), *(b"%d" % int(v) for v in versions.values())]
        stored = bool(self._set([k.encode() for k in keys], [blob, *args]))
        leases.pop(key, None)  # only once the script ran: a failed store leaves it to `release`
        return stored

    def invalidate(self, *tags: str) -> None:
        # INCR only the version keys: the cost never depends on how many entries carry a tag.
        self._ahead.clear()
        pipe = self._client.pipeline(transaction=False)
        for tag in dict.fromkeys(tags):
            pipe.incr(self._version_key(tag))
        pipe.execute()
        self._ahead.invalidated()  # after it landed, before anyone stops guarding against it

    def delete(self, *keys: str) -> None:
        self._ahead.clear()
        if keys:
            self._client.delete(*(self._prefix + key for key in keys))
            self._ahead.invalidated()

    def acquire(self, key: str, ttl: float) -> bool:
        token = secrets.token_hex(16)
        if self._client.set(self._lease_key(key), token, nx=True, px=_millis(ttl)):
            self._leases.tokens[key] = token
            return True
        return False

    def release(self, key: str) -> None:
        token = self._leases.tokens.pop(key, None)
        if token is not None:  # compare-and-delete: never drop a lease someone else took since
            self._release([self._lease_key(key).encode()], [token.encode()])

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def client(self) -> redis.Redis:
        return self._client

    @property
    def ahead(self) -> ReadAhead:
        return self._ahead

    def _read(self, key: str) -> bytes | None:
        """The read script on this thread's own connection (see ThreadScript), with the
        request pre-encoded but for the key: a read is the service's hot path."""
        name = (self._prefix + key).encode()
        return self._get.send(b"%b$%d\r\n%b\r\n%b" % (self._read_head, len(name), name, self._read_tail))

    def _version_key(self, tag: str) -> str:
        return self._prefix + tag + _VERSION_SUFFIX

    def _lease_key(self, key: str) -> str:
        return self._prefix + key + _LEASE_SUFFIX
