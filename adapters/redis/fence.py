"""The fence: nothing recorded on a server before it was promoted is served after.

Redis replicates asynchronously. A replica that lags behind its master (a slow link, a pause)
and is then promoted by Sentinel, or by an operator, comes up without the last writes its old
master acknowledged: a tag version's INCR that hid an entry, a session's removal. Served as they
are, its keys would bring back an entry the service had invalidated and a token it had logged
out. So every entry and every session state carries the server's *epoch* (the tag cache's
pseudo-tag `~epoch`, the state's `~epoch` field), and the epoch changes whenever the server the
service talks to has another replication history than the one the epoch was set under:

* each connection, when it connects, runs FENCE once per key prefix in use. FENCE reads the
  server's replication id (INFO replication: `master_replid`, which a server draws anew when it
  is promoted, or restarts) and compares it with the one stored beside the
  epoch (`prefix~epoch:replid`). Another id means another history: FENCE sets a new random
  epoch and the id, in one step (a script), so every entry and state recorded before is refused
  by the scripts that read them, and filled again from the database.
* a connection can only reach a promoted server by connecting to it, so it runs FENCE before
  its first command there. Sentinel ends the connections of every server it reconfigures
  (CLIENT KILL), and redis-py asks the sentinels for the master again on each new connection
  and after a READONLY reply; the per-thread connections of the scripts are made of the same
  fenced class (adapters.redis.tag_cache.thread_connection), and follow the pool when it learns
  of a new master.
* FENCE refuses a replica (READONLY): on Sentinel, redis-py turns that into a reconnect to the
  master; on one server's URL it is an error, and the cache is skipped.

A restart also draws a new replication id (from a snapshot or an append-only file too), so a
server that comes back with older data is fenced the same way.

Cost: one script per new connection and prefix (INFO replication, one or two GETs), nothing per
request beyond the epoch the scripts already compared (the tag cache) or one GET inside the
script (the session state's read and write). After a failover every entry and state is a miss
once: the cache is cold, never wrong. Measured in docs/benchmarks.md ("Failover fence").

Not covered, and said in docs/scaling.md: a master that stays up through a promotion (a manual
failover, a pause, a partition) keeps the connections it has until Sentinel demotes it, seconds
later, and the writes they carry meanwhile are lost at its demotion; if another connection has
fenced the new master by then, an invalidation or a logout among those writes is undone there.
Redis's `min-replicas-to-write` closes that window.

On Redis Cluster (decision 0008) each slot group has its epoch and replication id, under
`prefix{group}`, and the fence runs inside every script that uses the epoch, for its group
(GROUP_FENCE): a Cluster demotes a master without ending its clients' connections, and a node
demoted and promoted again would otherwise be read through connections fenced under its old
history. It costs each script one INFO (about 2.5 µs of the server's time). A slot moved to
another master carries the id of its old one: the first script there renews its epoch, once.

The cache's Redis user needs INFO (`+info`, which ACL puts in `@dangerous`): without it FENCE
fails and the cache is skipped.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis

EPOCH = "~epoch"  # the pseudo-tag of the server's epoch; real tags never start with "~"
EPOCH_KEY = EPOCH + ":v"  # after the prefix: where the epoch lives (a tag version's place)
REPLID_KEY = EPOCH + ":replid"  # after the prefix: the replication id the epoch was set under

# KEYS[1] the epoch, KEYS[2] the replication id it was set under; ARGV[1] a new epoch. Returns
# 1 when the epoch was renewed, 0 when it still holds; refuses a replica.
FENCE = """
local info = redis.call('INFO', 'replication')
if not string.find(info, 'role:master', 1, true) then
  return redis.error_reply('READONLY the cache must run on a master, not on a replica')
end
local id = string.match(info, 'master_replid:(%w+)')
if redis.call('GET', KEYS[2]) == id and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], id)
return 1
"""

# fence(epoch_key, create), on Redis Cluster, run first by every script that uses a slot
# group's epoch (adapters.redis.cluster_stores), for that group (the epoch at `epoch_key`, the
# replication id beside it at `~epoch:replid`): FENCE's step, the new epoch drawn from the id
# and the server's clock (a script has no randomness of its own). `create`: also when the group
# has no epoch yet, for the scripts that declare both keys, which Redis refuses (TRYAGAIN) on a
# slot on the move rather than let them create a key its move will bring; the others (the reads,
# which reach the id undeclared) only renew an epoch and an id both there.
GROUP_FENCE = """
local function fence(epoch_key, create)
  local replid_key = string.sub(epoch_key, 1, -2) .. 'replid'
  local stored = redis.call('GET', replid_key)
  if not stored and not create then return end
  local id = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
  local exists = redis.call('EXISTS', epoch_key) == 1
  if (stored == id and exists) or not (exists or create) then return end
  local now = redis.call('TIME')
  local epoch = tonumber(string.sub(id, 1, 5), 16) * 1e9 + (tonumber(now[1]) % 1000) * 1e6
  redis.call('SET', epoch_key, string.format('%d', epoch + tonumber(now[2]) + 1))
  redis.call('SET', replid_key, id)
end
"""

_PREFIXES = "fence_prefixes"  # in the pool's connection_kwargs: a list every connection shares


def new_epoch() -> bytes:
    return b"%d" % (secrets.randbelow(2**62) + 1)


def fence(connection: redis.Connection, prefix: str) -> int:
    """Run FENCE for `prefix` on a connected connection (see the module docstring)."""
    connection.send_command(
        "EVAL", FENCE, 2, prefix + EPOCH_KEY, prefix + REPLID_KEY, new_epoch(), check_health=False
    )
    return int(connection.read_response())


def _fenced(base: type[redis.Connection]) -> type[redis.Connection]:
    class Fenced(base):  # type: ignore[valid-type, misc]
        """`base` (a Connection, or Sentinel's SentinelManagedConnection) that runs FENCE for
        each prefix in use once connected, before any command of its user."""

        def __init__(self, *args: Any, fence_prefixes: list[str], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._fence_prefixes = fence_prefixes

        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health=check_health)
            for prefix in self._fence_prefixes:
                fence(self, prefix)

    Fenced.__name__ = Fenced.__qualname__ = f"Fenced{base.__name__}"
    return Fenced


def install_fence(client: redis.Redis, prefix: str) -> None:
    """Make every connection of `client` run FENCE for `prefix` when it connects. Called by the
    stores on their client before its first use by them; a connection made earlier is dropped
    from the pool, so that the next one is fenced."""
    pool = client.connection_pool
    prefixes = pool.connection_kwargs.get(_PREFIXES)
    if prefixes is None:
        prefixes = pool.connection_kwargs[_PREFIXES] = []
        pool.connection_class = _fenced(pool.connection_class)
    if prefix not in prefixes:
        prefixes.append(prefix)  # the list is shared: connections made since fence it too
        pool.disconnect(inuse_connections=False)
        pool.reset()
