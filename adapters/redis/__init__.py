"""Adapters on Redis: the tag cache and the session-state store (Lua scripts on per-thread
connections), and the clients of the server or Sentinel group CACHE_URL names (connection.py).
The login throttle's Redis storage comes from `limits` (adapters/throttle.py)."""

import redis

# What a Redis call raises when the server cannot serve: what the resilient decorators meet as
# an outage.
ERRORS: tuple[type[Exception], ...] = (redis.RedisError,)
