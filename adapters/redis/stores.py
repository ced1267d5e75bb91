"""The Redis client, tag cache and session-state store for a CACHE_URL: those of one server or a
Sentinel group's master (adapters.redis.tag_cache, adapters.redis.session_state), or of a
Cluster (adapters.redis.cluster_stores)."""

from __future__ import annotations

import redis

from adapters.caching.read_ahead import ReadAhead
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.cluster_stores import ClusterTagCache, ClusterUserStateStore
from adapters.redis.connection import is_cluster, make_client
from adapters.redis.session_state import RedisUserStateStore
from adapters.redis.tag_cache import RedisTagCache

Client = redis.Redis | ClusterClient


def client(url: str, *, socket_timeout: float) -> Client:
    """The client of the Redis `url` names: a Cluster's (made at first use), or a server's or a
    Sentinel group master's."""
    if is_cluster(url):
        return ClusterClient(url, socket_timeout=socket_timeout)
    return make_client(url, socket_timeout=socket_timeout)


def tag_cache(client: Client, prefix: str, *, ahead: ReadAhead) -> RedisTagCache | ClusterTagCache:
    """The read cache on `client`, its keys under `prefix`, delivering read-alongs to `ahead`."""
    if isinstance(client, ClusterClient):
        return ClusterTagCache(client, prefix, ahead=ahead)
    return RedisTagCache(client, prefix, ahead=ahead)


def state_store(
    client: Client, prefix: str, *, read_along: RedisTagCache | ClusterTagCache
) -> RedisUserStateStore | ClusterUserStateStore:
    """The session-state store on `client`, reading `read_along`'s wanted entry with the state."""
    if isinstance(client, ClusterClient):
        assert isinstance(read_along, ClusterTagCache)
        return ClusterUserStateStore(client, prefix, read_along=read_along)
    assert isinstance(read_along, RedisTagCache)
    return RedisUserStateStore(client, prefix, read_along=read_along)
