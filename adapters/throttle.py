"""LoginThrottle on the `limits` library: three moving windows of failed logins.

* per (account, client) pair, 5 per 15 minutes: the strict one; a success clears it;
* per client across accounts, 50 per 15 minutes: password spraying from one address;
* per account across clients, 20 per 5 minutes: guessing from many addresses, kept short so
  that whoever sprays a victim's account can lock the victim out for minutes at a time only;
* a device that has logged in to the account before (a device token) counts only against
  itself, 5 per 15 minutes: the two limits above, which others' failures fill, spare it.

Moving window rather than sliding window counter: it keeps one timestamp per failure, at most
`amount` of them per key (a handful here), so it costs little, and it is exact: a window never
lets a burst straddle its edge, and the moment the oldest failure ages out (what `retry_after`
reports) is known, where the counter strategy's weighted estimate only approximates it.

The storage is Redis (shared by every worker of every host), the host's shared SQLite file
(adapters.local.throttle: every worker of one host) or in-process memory. When a shared storage
fails, the call counts in an in-process memory limiter instead, so logins neither fail nor go
unthrottled, and the storage is tried again `storage_retry` seconds later. `retry_after` also
consults that local limiter, so a block earned while the storage was away outlives the outage,
which an OutageLog logs as it begins, once a minute while it lasts and as it ends (every call
counted in-process meanwhile is a failed one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from adapters.outage import OutageLog
from adapters.redis.connection import CLUSTER_SCHEMES, SENTINEL_SCHEMES, limits_storage

log = logging.getLogger("user_service.auth")
T = TypeVar("T")

NAMESPACE = "login"
REGISTRATIONS = "registration"
# What a Redis storage raises: with wrap_exceptions=True limits wraps every redis.RedisError
# (ConnectionError, TimeoutError, ResponseError, ...) in StorageError; the others are listed in
# case a storage is built without wrapping or a socket error escapes redis-py unconverted.
# RedisClusterException (a Cluster with no node answering) is not a RedisError.
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    StorageError,
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)

Rate = str | RateLimitItem
Limit = tuple[RateLimitItem, tuple[str, ...]]  # an item and the identifiers of its key


def _login(rate: Rate, namespace: str = NAMESPACE) -> RateLimitItem:
    item = parse(rate) if isinstance(rate, str) else rate
    return type(item)(item.amount, item.multiples, namespace=namespace)


def _part(value: str) -> str:
    # limits joins identifiers with "/": escape it so ("a/b", "c") and ("a", "b/c") differ.
    return value.replace("%", "%25").replace("/", "%2F")


def _wait(limiter: MovingWindowRateLimiter, limits: Sequence[Limit], now: float) -> int:
    """Whole seconds until every limit allows one more failure (each frees a slot when its
    oldest failure in the window ages out); 0 when all allow one now."""
    wait, blocked = 0.0, False
    for item, identifiers in limits:
        stats = limiter.get_window_stats(item, *identifiers)
        if stats.remaining <= 0:
            blocked, wait = True, max(wait, stats.reset_time - now)
    return max(1, math.ceil(wait)) if blocked else 0


class LimitsLoginThrottle:
    def __init__(
        self,
        storage: Storage,
        *,
        per_pair: Rate = "5/15 minutes",
        per_client: Rate = "50/15 minutes",
        per_account: Rate = "20/5 minutes",
        registrations_per_client: Rate = "10/hour",
        registrations: Rate = "120/minute",
        storage_retry: float = 5.0,
        outage: OutageLog | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`: the wall clock of the storage's windows (the one the storage itself uses);
        `outage`: where a storage outage is logged (else as "throttle", every minute, on
        `monotonic`). Neither the account key nor the client address is ever logged."""
        self._limiter = MovingWindowRateLimiter(storage)
        # Counts failures while the storage cannot be reached; an in-process storage needs none.
        self._local = None if isinstance(storage, MemoryStorage) else MovingWindowRateLimiter(MemoryStorage())
        self._pair, self._client, self._account = _login(per_pair), _login(per_client), _login(per_account)
        self._registrations: tuple[Limit, ...] = (
            (_login(registrations_per_client, REGISTRATIONS), ("client",)),
            (_login(registrations, REGISTRATIONS), ("all",)),
        )
        self._storage_retry = storage_retry
        self._monotonic = monotonic
        self._clock = clock
        self._down_until: float | None = None  # None: the storage answered last time
        self._outage = outage or OutageLog(
            "throttle",
            log,
            what="the login throttle's storage",
            effect=f"failed logins are counted in-process, the storage retried after {storage_retry:g}s",
            monotonic=monotonic,
        )

    def retry_after(self, account: str, client: str, device: str | None = None) -> int:
        limits, now = self._limits(account, client, device), self._clock()
        local = _wait(self._local, limits, time.time()) if self._local is not None else 0
        return max(local, self._use("retry_after", lambda limiter: _wait(limiter, limits, now)))

    def failed(self, account: str, client: str, device: str | None = None) -> None:
        limits = self._limits(account, client, device)
        self._use("failed", lambda limiter: [limiter.hit(item, *ids) for item, ids in limits])

    def succeeded(self, account: str, client: str, device: str | None = None) -> None:
        item, identifiers = self._limits(account, client, device)[0]
        if self._local is not None:
            self._local.clear(item, *identifiers)
        self._use("succeeded", lambda limiter: limiter.clear(item, *identifiers))

    def admit(self, client: str) -> int:
        """A registration (ports.registration_limit): 10 an hour per client address and 120 a
        minute in all, by default; the same storage and the same fallback as failed logins."""
        limits = [
            (item, (*ids, _part(client)) if ids == ("client",) else ids) for item, ids in self._registrations
        ]
        now = self._clock()

        def admit(limiter: MovingWindowRateLimiter) -> int:
            if wait := _wait(limiter, limits, now):
                return wait
            for item, identifiers in limits:
                limiter.hit(item, *identifiers)
            return 0

        return self._use("admit", admit)

    def _limits(self, account: str, client: str, device: str | None = None) -> tuple[Limit, ...]:
        account, client = _part(account), _part(client)
        if device is not None:  # a device known to this account: its own limit, and only that
            return ((self._pair, ("device", account, _part(device))),)
        return (
            (self._pair, ("pair", account, client)),
            (self._client, ("client", client)),
            (self._account, ("account", account)),
        )

    def _use(self, call: str, action: Callable[[MovingWindowRateLimiter], T]) -> T:
        """`action` on the storage, or on the local limiter while the storage is failing."""
        if self._local is None:
            return action(self._limiter)
        now = self._monotonic()
        if self._down_until is not None and now < self._down_until:
            self._outage.failed(call, "not tried: the storage failed moments ago")
        else:
            try:
                result = action(self._limiter)
            except STORAGE_ERRORS as error:
                self._down_until = now + self._storage_retry
                self._outage.failed(call, getattr(error, "storage_error", error))
            else:
                self._down_until = None
                self._outage.answered()
                return result
        return action(self._local)


def login_throttle(
    url: str, prefix: str, *, socket_timeout: float = 0.25, **policy: Any
) -> LimitsLoginThrottle:
    """A throttle on "memory" (this process only) or on the Redis at a redis:// URL (or a
    Sentinel group's master: redis+sentinel://; or a Cluster: redis+cluster://), its keys under
    `prefix`. Redis gets short
    timeouts and at most one immediate retry, on a dropped connection only (redis-py's default
    backs off for seconds), since every login waits on it.
    `policy`: the throttle's keyword parameters (rates, retry interval, outage log, clocks)."""
    scheme = urlparse(url).scheme
    if url == "memory" or scheme == "memory":
        return LimitsLoginThrottle(MemoryStorage(), **policy)
    if scheme not in ("redis", "rediss", "redis+unix", *SENTINEL_SCHEMES, *CLUSTER_SCHEMES):
        raise ValueError(f"login throttle storage must be 'memory' or a redis:// URL, not {scheme!r}")
    storage = limits_storage(url, prefix, socket_timeout=socket_timeout)
    return LimitsLoginThrottle(storage, **policy)
