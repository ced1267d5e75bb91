"""Adapters on Redis: the tag cache and the session-state store (Lua scripts on per-thread
connections; on a Cluster, in slot groups: cluster_stores.py), and the clients of the server,
Sentinel group or Cluster CACHE_URL names (connection.py, cluster_client.py; stores.py picks).
The login throttle's Redis storage comes from `limits` (adapters/throttle.py)."""

import redis

# What a Redis call raises when the server cannot serve: what the resilient decorators meet as
# an outage (a Cluster client's own, such as no node reachable or a slot not covered, included).
ERRORS: tuple[type[Exception], ...] = (redis.RedisError, redis.exceptions.RedisClusterException)
