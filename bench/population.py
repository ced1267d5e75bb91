# Over 200 lines: the population's ids, rows, cache entries and wrk script belong together.
"""bench/http_read.py --users N: N users seeded straight into a service scenario's database, its
read cache warmed with every one of them, and wrk's script asking for a random one per request.

Seeding writes the rows the service writes at registration (adapters/sqlalchemy/users.py's
_to_row), SEED_BATCH a transaction. Warming stores each user's entry by id as the service's first
read of it would (adapters.caching.users.UserEntries through ReadThrough): the key
`keys.user(id)`, the value `RepresentationCodec().encode(user_of(row))` from the seeded row, the
TTL of BY_ID and the tag versions the cache's own `tag_versions` gives, a snapshot per entry.
Redis gets the bytes RedisTagCache.set stores (`pack_entry`, PX the TTL) in a pipeline of SETs;
the local store gets SqliteTagCache.set itself, a transaction a batch.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bare_app  # bench/, this script's directory, is first on sys.path
import redis
from sqlalchemy import create_engine, insert, select
from sqlalchemy.pool import NullPool

from adapters.caching import keys
from adapters.caching.read_ahead import ReadAhead
from adapters.caching.users import BY_ID
from adapters.local import LocalStore, SqliteTagCache
from adapters.redis import stores as redis_stores
from adapters.redis.cluster_stores import ClusterTagCache
from adapters.redis.tag_cache import RedisTagCache, pack_entry, thread_connection
from adapters.sqlalchemy.tables import users
from adapters.sqlalchemy.users import user_of
from app import config, instance
from app.http.user_representation import RepresentationCodec
from domain.users.model import User

# Rows a transaction (and cache entries a batch), and a progress line each time this many more are in.
SEED_BATCH = 10_000
SEED_PROGRESS = 100_000
READER_ROLES = ["admin", "user"]  # sorted, as the service stores roles
# wrk's script for --users: each request asks for a random one of the ids in the file named by its
# first argument (one 36-character id a line, read at once: one string per thread, however many
# ids); with "etag" as the second, If-None-Match carries that user's ETag at version 1 (app/http/
# conditional.py's etag_of). Each thread is seeded apart, and done() prints how many distinct ids
# were asked for, from every thread's set (globals, which thread:get copies).
RANDOM_IDS_LUA = """\
WIDTH = 37
threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("number", #threads)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   ids = file:read("*a")
   file:close()
   size = math.floor(#ids / WIDTH)
   etag = args[2] == "etag"
   seen = {}
   math.randomseed(os.time() * 1000 + number)
end

function request()
   local n = math.random(size)
   local id = ids:sub((n - 1) * WIDTH + 1, n * WIDTH - 1)
   seen[n] = true
   if etag then
      wrk.headers["If-None-Match"] = '"r1-' .. id:gsub("-", "") .. '-1"'
   end
   return wrk.format(nil, "/api/users/" .. id)
end

function done(summary, latency, requests)
   local union, distinct = {}, 0
   for _, thread in ipairs(threads) do
      for n in pairs(thread:get("seen")) do
         if not union[n] then
            union[n] = true
            distinct = distinct + 1
         end
      end
   end
   io.write(string.format("Distinct ids: %d of %d\\n", distinct, threads[1]:get("size")))
end
"""
# An entry as stored: key, value, tag versions, delta (seconds).
Entry = tuple[str, bytes, dict[str, int], float]


class NotWarmed(Exception):
    """The read cache could not be warmed; the message says why."""


@dataclass(frozen=True)
class Population:
    """--users: `size` users, the same in every database, seeded straight into it (not through
    the API); their ids are in `ids`, one a line. The first is the reader, who logs in: an admin,
    so it may read the others. wrk asks for a random one per request through `script`."""

    size: int
    ids: Path
    lua: Path
    reader: str  # the first id
    sample: str  # the second: a user as the others, whose body the peers must serve byte for byte
    password_hash: str  # one for all; only the reader logs in
    progress: Callable[[str], None]

    @classmethod
    def create(
        cls, workdir: Path, size: int, *, password_hash: str, progress: Callable[[str], None]
    ) -> Population:
        """`size` new random ids (uuid4, as the service's) in workdir/ids.txt, and the Lua script."""
        ids, lua = workdir / "ids.txt", workdir / "random_ids.lua"
        with ids.open("w") as file:
            for start in range(0, size, SEED_BATCH):
                file.writelines(f"{uuid.uuid4()}\n" for _ in range(min(SEED_BATCH, size - start)))
        lua.write_text(RANDOM_IDS_LUA)
        with ids.open() as file:
            reader, sample = file.readline().strip(), file.readline().strip()
        return cls(size, ids, lua, reader, sample, password_hash, progress)

    def script(self, etag: bool = False) -> tuple[str, ...]:
        """wrk's script and its arguments: a random user per request, with its ETag if `etag`."""
        return (str(self.lua), str(self.ids), *(["etag"] if etag else []))

    def fill(self, name: str, database_url: str) -> None:
        """Inserts the users into the migrated database at `database_url`, SEED_BATCH a transaction;
        `name` is the scenario's, for the progress lines."""
        engine = create_engine(database_url, poolclass=NullPool)
        started, done = time.perf_counter(), 0
        try:
            with engine.connect() as connection, self.ids.open() as file:
                if engine.dialect.name == "sqlite":
                    # This connection only: a crash while seeding loses a file that is thrown away anyway.
                    connection.exec_driver_sql("PRAGMA synchronous = OFF")
                    connection.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB: the id index
                    connection.commit()
                while lines := [line.strip() for line in itertools.islice(file, SEED_BATCH)]:
                    with connection.begin():
                        connection.execute(insert(users), user_rows(lines, done, self.password_hash))
                    done += len(lines)
                    if done % SEED_PROGRESS < SEED_BATCH or done == self.size:
                        rate = done / (time.perf_counter() - started)
                        self.progress(f"{name}: seeded {done:,} of {self.size:,} users ({rate:,.0f} rows/s)")
            if engine.dialect.name == "postgresql":
                # Statistics for the planner now, and no pass over the new rows left for autovacuum
                # (when it is on) to make during the measurement.
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.exec_driver_sql("VACUUM (ANALYZE) users")
                elapsed = time.perf_counter() - started
                self.progress(f"{name}: VACUUM (ANALYZE) users done, {elapsed:.1f} s in all")
        finally:
            engine.dispose()

    def warm(self, name: str, env: Mapping[str, str]) -> None:
        """Stores every seeded user's entry by id in the read cache of the service configured by
        `env` (its CACHE_URL and CACHE_PREFIX, read by the service's own config), before its server
        starts; nothing when it has no shared cache. The entries live BY_ID.ttl (600 s) from now:
        the scenarios on that server must be done by then."""
        try:
            settings = config.load(env)
        except config.ConfigError as error:
            raise NotWarmed(f"{name}: the service's settings: {error}") from None
        target = read_cache(settings)
        if target is None:
            return
        started, done, sample = time.perf_counter(), 0, uuid.UUID(self.sample)
        try:
            for done in warm_batches(target, settings["database_url"]):
                if done % SEED_PROGRESS < SEED_BATCH or done == self.size:
                    rate = done / (time.perf_counter() - started)
                    self.progress(f"{name}: warmed {done:,} of {self.size:,} cache entries ({rate:,.0f}/s)")
            # Read back through the cache's own get, which checks the tag versions and the epoch.
            entry = target.cache.get(keys.user(sample))
        finally:
            target.close()
        if done != self.size or entry is None or RepresentationCodec().decode(entry.value).id != sample:
            found = "nothing" if entry is None else "another user"
            raise NotWarmed(f"{name}: {done:,} entries stored of {self.size:,}; the sample read back {found}")
        elapsed = time.perf_counter() - started
        self.progress(f"{name}: read cache warmed in {elapsed:.1f} s; the entries live {BY_ID.ttl:.0f} s")


def user_rows(ids: list[str], first: int, password_hash: str) -> list[dict[str, Any]]:
    """The rows the service writes at registration (adapters/sqlalchemy/users.py's _to_row), for
    the users numbered `first`, `first` + 1, …; number 0 is the reader."""
    now = datetime.now(UTC)
    return [
        {
            "id": uuid.UUID(user_id),
            "email": bare_app.EMAIL if number == 0 else f"u{number:07d}@bench.io",  # as long
            "initials": "AB",
            "password_hash": password_hash,
            "confirmed": False,
            "roles": READER_ROLES if number == 0 else ["user"],
            "status": "active",
            "version": 1,
            "created_at": now,
        }
        for number, user_id in enumerate(ids, start=first)
    ]


def warm_batches(target: RedisEntries | LocalEntries, database_url: str) -> Iterator[int]:
    """Stores the entry of every user in the database at `database_url` in `target`, SEED_BATCH
    a batch; yields how many are stored after each batch."""
    codec = RepresentationCodec()
    engine = create_engine(database_url, poolclass=NullPool)
    done = 0
    try:
        with engine.connect() as connection:
            # In key order: the local store's key index grows at its end.
            query = select(users).order_by(users.c.id)
            rows = connection.execution_options(yield_per=SEED_BATCH).execute(query).mappings()
            mark = time.perf_counter()
            for batch in rows.partitions():
                found = [user_of(row) for row in batch]
                values = [codec.encode(user) for user in found]
                # What a miss records as its load's duration (XFetch's delta): this load's share.
                delta = (time.perf_counter() - mark) / len(found)
                target.put(entries(target.cache, found, values, delta), BY_ID.ttl)
                done += len(found)
                yield done
                mark = time.perf_counter()
    finally:
        engine.dispose()


def entries(
    cache: RedisTagCache | SqliteTagCache, found: list[User], values: list[bytes], delta: float
) -> list[Entry]:
    """Each user's entry with the versions `cache.tag_versions(keys.user(id), keys.user_tags(id))`
    gives: one snapshot per entry, taken for its key, with the versions the adapter adds of its
    own (the epoch) as tag_versions returns them."""
    batch: list[Entry] = []
    for user, value in zip(found, values, strict=True):
        key = keys.user(user.id)
        batch.append((key, value, cache.tag_versions(key, keys.user_tags(user.id)), delta))
    return batch


class RedisEntries:
    """Entries stored as RedisTagCache.set stores them (pack_entry, then SET PX the TTL), a
    pipeline of plain SETs a batch: the same bytes without running its compare-and-set script
    for each, which guards against an invalidation between the snapshot and the set; with no
    server running there is none. On a Cluster, ClusterTagCache.set itself, an entry at a time:
    its keys are in slot groups, and it creates the versions an entry records."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis_stores.client(url, socket_timeout=60)  # the service's own
        self.cache = redis_stores.tag_cache(self.client, prefix, ahead=ReadAhead())

    def put(self, batch: list[Entry], ttl: float) -> None:
        if isinstance(self.cache, ClusterTagCache):  # its keys in slot groups, versions created
            for key, value, versions, delta in batch:
                self.cache.set(key, value, ttl=ttl, versions=versions, delta=delta)
            return
        now, millis = time.time(), math.ceil(ttl * 1000)  # as RedisTagCache.set: its clock, PX in ms
        pipe = self.client.pipeline(transaction=False)
        for key, value, versions, delta in batch:
            blob = pack_entry(value, expires_at=now + ttl, delta=delta, versions=versions)
            pipe.set(self.cache.prefix + key, blob, px=millis)
        pipe.execute()

    def close(self) -> None:
        if isinstance(self.client, redis.Redis):
            thread_connection(self.client).disconnect()  # the one `get` ran on, outside the pool
        self.client.close()


class LocalEntries:
    """Entries stored by the service's SqliteTagCache.set (its conditional INSERT), on the store
    it will open (the same owner, or it would empty the file), in one transaction a batch."""

    def __init__(self, path: str, owner: str) -> None:
        self.store = LocalStore(path, owner=owner)
        # Never a sweep: it opens a transaction of its own, which cannot nest in a batch's (and
        # nothing has expired yet).
        self.cache = SqliteTagCache(self.store, sweep_every=math.inf)
        self.store.connection().execute("PRAGMA cache_size = -262144")  # this connection's: the key index

    def put(self, batch: list[Entry], ttl: float) -> None:
        with self.store.transaction():
            for key, value, versions, delta in batch:
                if not self.cache.set(key, value, ttl=ttl, versions=versions, delta=delta):
                    raise NotWarmed(f"the local store refused {key}: a tag moved on since its snapshot")

    def close(self) -> None:
        self.store.connection().close()


def read_cache(settings: dict[str, Any]) -> RedisEntries | LocalEntries | None:
    """Where the service with `settings` keeps its read cache, if it is shared with this process."""
    cache = settings["cache"]
    if cache["backend"] == "redis":
        return RedisEntries(cache["url"], cache["prefix"])
    if cache["backend"] == "local":
        return LocalEntries(cache["path"], instance.database_identity(settings))
    return None
