"""The client of a Redis Cluster that CACHE_URL names (redis+cluster://, rediss+cluster:// for TLS):

    redis+cluster://[[username]:password@]host:port[,host:port...]

redis-py's RedisCluster, which learns the slots' owners from the nodes it is given and follows
MOVED and ASK, made at first use rather than at start: its constructor asks the nodes for the
slots, and a Cluster that is down when the service starts must skip the cache, as a lone
server's outage does, not stop the service. (The fence runs inside the scripts, per slot group:
adapters.redis.fence.GROUP_FENCE.)
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from adapters.redis.connection import cluster_nodes

# Attempts of one command across MOVED, ASK and TRYAGAIN: two, for one redirection (redis-py's
# default is 16, with a 50 ms sleep after each TRYAGAIN of the second half). A script whose keys
# are split by a slot on the move is then refused twice and waits one sleep (50 ms, after the
# second, redis-py's), not eight, and its read is answered from the database
# (adapters.redis.cluster_stores).
REQUEST_ATTEMPTS = 2


class ClusterClient:
    """A RedisCluster client made on first use, once per process; a failed making (the Cluster
    unreachable) raises, as a command would, and the next use tries again."""

    def __init__(self, url: str, *, socket_timeout: float) -> None:
        self.url = url
        self._nodes = cluster_nodes(url)  # ValueError for a malformed URL, at once
        userinfo = url.partition("://")[2].rpartition("@")[0]
        username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
        self._tls = url.startswith("rediss+")
        self._settings: dict[str, Any] = {
            "username": unquote(username) or None,
            "password": unquote(password) or None,
            "ssl": self._tls,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "decode_responses": False,
            # One immediate retry of a dropped connection, as the one-server client's (_quick).
            "retry": Retry(NoBackoff(), 1),
        }
        self._lock = threading.Lock()
        self._client: RedisCluster | None = None

    @property
    def client(self) -> RedisCluster:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _make(self) -> RedisCluster:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._nodes],
            **self._settings,
        )
        client.RedisClusterRequestTTL = REQUEST_ATTEMPTS
        return client
