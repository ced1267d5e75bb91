# Over 200 lines: the cached repository and its invalidating subscribers share the key and tag policy.
"""The users context's read caches: a repository decorator and the invalidating subscribers.

`CachedUserRepository` wraps the repository of a read-only unit of work: unlocked reads by id,
by email and of list pages go through the cache; everything else goes straight through. Query
handlers cannot tell it is there. Writes never go through it: command handlers read with
`lock=True` in their own units of work, and their events invalidate what they changed.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar
from uuid import UUID

from adapters.caching import keys, metrics
from adapters.caching.read_through import Policy, ReadThrough
from adapters.caching.resilient import CacheUnavailable
from domain.messages import Event
from domain.users.events import UserDeleted, UserRegistered, UserUpdated
from domain.users.model import User, UserStatus
from domain.users.queries import Page, PageRequest, UserFilter
from ports.repositories import AccountTokenRepository, UserRepository
from ports.tag_cache import TagCache
from ports.unit_of_work import UnitOfWork

log = logging.getLogger("user_service.cache")
T = TypeVar("T")

BY_ID = Policy("user_by_id", ttl=600, beta=1.0)
BY_EMAIL = Policy("user_by_email", ttl=300, missing_ttl=60)
COLLECTION = Policy("user_collection", ttl=300)


class UserCodec(Protocol):
    """How a user is stored in the cache (the app stores its HTTP representation alongside)."""

    def encode(self, user: User) -> bytes: ...

    def decode(self, value: bytes) -> User: ...


def user_record(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "initials": user.initials,
        "password_hash": user.password_hash,
        "created_at": user.created_at.isoformat(),
        "confirmed": user.confirmed,
        "roles": sorted(user.roles),
        "status": user.status.value,
        "version": user.version,
    }


def user_from_record(record: dict[str, Any]) -> User:
    return User(
        id=UUID(record["id"]),
        email=record["email"],
        initials=record["initials"],
        password_hash=record["password_hash"],
        created_at=datetime.fromisoformat(record["created_at"]),
        confirmed=record["confirmed"],
        roles=frozenset(record["roles"]),
        status=UserStatus(record["status"]),
        version=record["version"],
    )


class RecordCodec:
    """The user's record as JSON."""

    def encode(self, user: User) -> bytes:
        return json.dumps(user_record(user), separators=(",", ":")).encode()

    def decode(self, value: bytes) -> User:
        return user_from_record(json.loads(value))


class UserEntries:
    """The cached users by id as stored (what the HTTP read path answers with): a hit, or on a
    miss or an entry due for early recompute, the user loaded through a read-only unit of work
    from `source` (inside the hot path's shared_reads, on the connection its session check
    used). Without `reads` (the cache switched off) every read loads."""

    def __init__(self, reads: ReadThrough | None, codec: UserCodec, source: Callable[[], UnitOfWork]) -> None:
        self._reads = reads
        self._codec = codec
        self._source = source

    @staticmethod
    def key(user_id: UUID) -> str:
        """The cache key `read` reads the user under."""
        return keys.user(user_id)

    def read(self, user_id: UUID) -> bytes | None:
        """The stored user; None when there is no such user."""
        if self._reads is None:
            return self._load(user_id)
        return self._reads.fetch(
            self.key(user_id), keys.user_tags(user_id), BY_ID, lambda: self._load(user_id)
        )

    def _load(self, user_id: UUID) -> bytes | None:
        with self._source() as uow:
            user = uow.users.get(user_id)
        return None if user is None else self._codec.encode(user)


class CachedUserRepository:
    def __init__(self, inner: Callable[[], UserRepository], reads: ReadThrough, codec: UserCodec) -> None:
        self._inner = inner  # called only when the cache cannot answer
        self._reads = reads
        self._codec = codec

    def add(self, user: User) -> None:
        self._inner().add(user)

    def remove(self, user: User) -> None:
        self._inner().remove(user)

    def get(self, user_id: UUID, *, lock: bool = False) -> User | None:
        if lock:
            return self._inner().get(user_id, lock=True)
        return self._fetch(
            keys.user(user_id),
            keys.user_tags(user_id),
            BY_ID,
            lambda: self._encode(self._inner().get(user_id)),
            self._codec.decode,
        )

    def get_by_email(self, email: str, *, lock: bool = False) -> User | None:
        if lock:
            return self._inner().get_by_email(email, lock=True)
        return self._fetch(
            keys.user_email(email),
            keys.user_email_tags(email),
            BY_EMAIL,
            lambda: self._encode(self._inner().get_by_email(email)),
            self._codec.decode,
        )

    def list(self, filter: UserFilter, page: PageRequest) -> Page[User]:
        def load() -> bytes:
            found = self._inner().list(filter, page)
            items = [user_record(user) for user in found.items]
            return json.dumps({"total": found.total, "items": items}, separators=(",", ":")).encode()

        def decode(value: bytes) -> Page[User]:
            stored = json.loads(value)
            items = [user_from_record(record) for record in stored["items"]]
            return Page(items=items, total=stored["total"], request=page)

        found = self._fetch(
            keys.user_collection(filter, page), keys.user_collection_tags(), COLLECTION, load, decode
        )
        if found is None:
            raise AssertionError("a list page is never 'not found'")
        return found

    def _fetch(
        self,
        key: str,
        tags: Sequence[str],
        policy: Policy,
        load: Callable[[], bytes | None],
        decode: Callable[[bytes], T],
    ) -> T | None:
        value = self._reads.fetch(key, tags, policy, load)
        if value is None:
            return None
        try:
            return decode(value)
        except (ValueError, KeyError, TypeError, struct.error):
            # Written by another version of the service (a deploy under way): replace it.
            log.info("operation=cache.unreadable key=%s: reloading", key)
            with suppress(CacheUnavailable):
                self._reads.cache.delete(key)
            value = self._reads.fetch(key, tags, policy, load)
            return None if value is None else decode(value)

    def _encode(self, user: User | None) -> bytes | None:
        return None if user is None else self._codec.encode(user)


class CachedReadUnitOfWork:
    """A read-only unit of work whose user reads go through the cache. The inner unit of work,
    with its connection and transaction, is entered only when a read misses: a hit costs no
    database work at all, not even BEGIN and ROLLBACK."""

    def __init__(self, inner: UnitOfWork, reads: ReadThrough, codec: UserCodec) -> None:
        self._inner = inner
        self._reads = reads
        self._codec = codec
        self._entered = False

    def __enter__(self) -> Self:
        self.users = CachedUserRepository(lambda: self._open().users, self._reads, self._codec)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._entered:
            self._entered = False
            self._inner.__exit__(*exc_info)

    @property
    def tokens(self) -> AccountTokenRepository:
        return self._open().tokens

    def record(self, event: Event) -> None:
        raise TypeError(f"a read-only unit of work records no events ({type(event).__name__})")

    def commit(self) -> None:
        if self._entered:
            self._inner.commit()

    def rollback(self) -> None:
        if self._entered:
            self._inner.rollback()

    def _open(self) -> UnitOfWork:
        if not self._entered:
            self._inner.__enter__()
            self._entered = True
        return self._inner


# -- invalidation subscribers (DESIGN §4) ---------------------------------------------------


def invalidate_registered(event: UserRegistered, cache: TagCache) -> None:
    # The email's lookup key may hold a cached "not found".
    _invalidate(cache, "user_registered", event.user_id, keys.USER_COLLECTION, keys.user_email(event.email))


def invalidate_updated(event: UserUpdated, cache: TagCache) -> None:
    tags = [keys.user(event.user_id), keys.user_email(event.email), keys.USER_COLLECTION]
    if event.previous_email is not None:
        tags.append(keys.user_email(event.previous_email))
    if event.previous_email_unknown:
        tags.append(keys.USER_EMAIL)  # every lookup by email: the one left behind is not known
    _invalidate(cache, "user_updated", event.user_id, *tags)


def invalidate_deleted(event: UserDeleted, cache: TagCache) -> None:
    tags = (keys.user(event.user_id), keys.user_email(event.email), keys.USER_COLLECTION)
    _invalidate(cache, "user_deleted", event.user_id, *tags)


def _invalidate(cache: TagCache, reason: str, user_id: UUID, *tags: str) -> None:
    cache.invalidate(*tags)
    metrics.INVALIDATIONS.labels(reason).inc()
    log.info("operation=cache.invalidation reason=%s user_id=%s tags=%d", reason, user_id, len(tags))


EVENT_HANDLERS: dict[type, list[Callable]] = {
    UserRegistered: [invalidate_registered],
    UserUpdated: [invalidate_updated],
    UserDeleted: [invalidate_deleted],
}
