# Over 200 lines: three kinds of Redis URL (one server, Sentinel, Cluster) and their clients.
"""Clients for the Redis that CACHE_URL names: one server (redis://, rediss://, unix://) or the
master of a Sentinel group (redis+sentinel://, rediss+sentinel:// for TLS):

    redis+sentinel://[[username]:password@]host:port[,host:port...]/service_name[/db][?sentinel_password=...]

The credentials are the master's (and its replicas'); `sentinel_password` (and
`sentinel_username`) the sentinels' own, when they ask for one. A Sentinel client asks the
sentinels for the master's address on each new connection, and a READONLY reply (the server it
knew was demoted) closes the connection, so the next one asks again (a retry within one command
goes back to the address it had): redis-py's SentinelManagedConnection, as `SentinelConnection`
below, which the per-thread connections of the scripts are made of too
(adapters.redis.tag_cache).

A Redis Cluster (redis+cluster://host:port[,...], rediss+cluster:// for TLS) has its own client
(adapters.redis.cluster_client); the login throttle's storage on it is limits'
RedisClusterStorage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import redis
from limits.storage import RedisClusterStorage, RedisSentinelStorage, RedisStorage, Storage
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SERVER_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class SentinelGroup:
    """Where a Sentinel URL points: the sentinels, the service (master) name, the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0] in SENTINEL_SCHEMES


def is_cluster(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[tuple[str, int], ...]:
    """The startup nodes of a redis+cluster://[[username]:password@]host:port[,host:port...] URL
    (rediss+cluster:// for TLS; no database: a Cluster has only 0); ValueError saying what is
    wrong otherwise."""
    scheme, _, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Cluster URL (redis+cluster:// or rediss+cluster://): {scheme!r}")
    hosts = rest.rpartition("@")[2]
    if "/" in hosts.rstrip("/") or "?" in hosts:
        raise ValueError("a Cluster URL names its nodes only: no database, no options")
    return tuple(_address(host, "node") for host in hosts.rstrip("/").split(","))


def sentinel_group(url: str) -> SentinelGroup:
    """The parts of a redis+sentinel:// URL; ValueError saying what is wrong otherwise."""
    scheme, _, rest = url.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"not a Sentinel URL (redis+sentinel:// or rediss+sentinel://): {scheme!r}")
    rest, _, query = rest.partition("?")
    userinfo, _, hosts = rest.rpartition("@")
    hosts, _, path = hosts.partition("/")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    parts = [part for part in path.split("/") if part]
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("the path must be /service_name or /service_name/db (a number)")
    options = {name: values[-1] for name, values in parse_qs(query).items()}
    unknown = set(options) - {"sentinel_username", "sentinel_password"}
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}: sentinel_username, sentinel_password")
    return SentinelGroup(
        sentinels=tuple(_address(host) for host in hosts.split(",")),
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        tls=scheme == "rediss+sentinel",
    )


def _address(host: str, what: str = "sentinel") -> tuple[str, int]:
    name, _, port = host.rpartition(":")
    name = name.strip("[]")  # an IPv6 address in brackets
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"each {what} is host:port, not {host!r}")
    return name, int(port)


class SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that behaves as a plain Connection where redis-py's does
    not: it closes itself when a read fails (redis-py's keeps it open, `disconnect_on_error=
    False`, and a command that timed out would leave its reply to be read as the answer to the
    next command), and a command sent while it is not connected connects through the sentinels
    (redis-py's would connect to its own default host and port: the per-thread connections of
    adapters.redis.tag_cache send without a pool's checkout)."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self._sock is None:
            self.connect()
        super().send_packed_command(command, check_health=check_health)

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding=disable_decoding,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )


class SentinelSSLConnection(SentinelConnection, SSLConnection):
    pass


def _connection_class(group: SentinelGroup) -> type[redis.Connection]:
    return SentinelSSLConnection if group.tls else SentinelConnection


def _quick(socket_timeout: float) -> dict[str, Any]:
    """What a cache that must never hold a request up asks of every connection: short connect
    and read timeouts and at most one immediate retry, on a dropped connection only (redis-py's
    default retries ten times with backoff, which would turn one outage into seconds per
    request)."""
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    }


def _sentinels(group: SentinelGroup, socket_timeout: float) -> dict[str, Any]:
    """The sentinels' own connection settings (redis.sentinel.Sentinel's sentinel_kwargs)."""
    settings: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "ssl": group.tls,
    }
    # Always set, None included: limits gives the sentinels the master's credentials otherwise,
    # which a sentinel without a password refuses.
    settings["username"] = group.sentinel_username
    settings["password"] = group.sentinel_password
    return settings


def make_client(url: str, *, socket_timeout: float) -> redis.Redis:
    """A client of the server, or of the Sentinel group's master, that `url` names (a Cluster's
    is adapters.redis.cluster_client.ClusterClient: see adapters.redis.stores.client)."""
    if is_cluster(url):
        raise ValueError("a Cluster URL: its client is adapters.redis.cluster_client.ClusterClient")
    if not is_sentinel(url):
        return redis.Redis.from_url(url, decode_responses=False, **_quick(socket_timeout))
    group = sentinel_group(url)
    sentinel = Sentinel(list(group.sentinels), sentinel_kwargs=_sentinels(group, socket_timeout))
    return sentinel.master_for(
        group.service,
        db=group.db,
        username=group.username,
        password=group.password,
        connection_class=_connection_class(group),
        decode_responses=False,
        **_quick(socket_timeout),
    )


def limits_storage(url: str, prefix: str, *, socket_timeout: float) -> Storage:
    """The `limits` library's storage on the same Redis (the login throttle's windows), its keys
    under `prefix`; on a Sentinel group always the master (a replica's counts may lag); on a
    Cluster, each window on the master of its key's slot (limits' RedisClusterStorage, whose
    client follows MOVED and ASK)."""
    # limits types its pass-through redis options as float | str | bool; redis takes a Retry.
    quick: dict[str, Any] = _quick(socket_timeout)
    if is_cluster(url):
        cluster_nodes(url)  # a clear error for a malformed URL before limits parses it
        if url.startswith("rediss+"):
            quick["ssl"] = True  # limits reads no TLS from the scheme
        return RedisClusterStorage(url, key_prefix=prefix, wrap_exceptions=True, **quick)
    if not is_sentinel(url):
        return RedisStorage(url, key_prefix=prefix, wrap_exceptions=True, **quick)
    group = sentinel_group(url)
    hosts = ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in group.sentinels
    )
    credentials = {name: value for name in ("username", "password") if (value := getattr(group, name))}
    quick["connection_class"] = _connection_class(group)
    return RedisSentinelStorage(
        f"redis+sentinel://{hosts}/{group.service}",
        use_replicas=False,
        sentinel_kwargs=_sentinels(group, socket_timeout),
        key_prefix=prefix,
        wrap_exceptions=True,
        db=group.db,
        **credentials,
        **quick,
    )
