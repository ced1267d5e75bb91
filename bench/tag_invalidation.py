"""Benchmark: `invalidate` of a tag covering 1 key vs N keys (in-memory and Redis; --keys N,
default 100,000), and a Redis `get` hit vs a plain redis-py GET of the same payload.

    .venv/bin/python bench/tag_invalidation.py [--keys N]

Both tags are filled first, then their invalidations are timed interleaved (1,000 of each); an
invalidation is one INCR of the tag's version key whatever the number of keys, so the ratio
N/1 should stay about 1.00. Redis is BENCH_REDIS_URL (default redis://127.0.0.1:6379/12);
every key it writes is under `bench:<random>:` and deleted at the end. The default runs in well
under ten seconds; --keys 1000000 takes about 200 MB in Redis and 400 MB in this process (the
in-memory store) for about half a minute (extrapolated from 100,000), most of it filling and
deleting the keys.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.memory.tag_cache import InMemoryTagCache
from adapters.redis.tag_cache import (
    RedisTagCache,  # noqa: E402
    pack_entry,  # noqa: E402
)

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
WIDE = 100_000  # keys under the wide tag, unless --keys
FILL_BATCH = 10_000
REPEATS = 1_000
GETS = 5_000
PAYLOAD = b'{"id": "5f0c", "email_hash": "ab12", "roles": ["member"], "pad": "' + b"x" * 444 + b'"}'
TTL = 300


def timed_pairs(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median µs per call of each, interleaved so drift and noise hit both alike."""
    for _ in range(50):
        first(), second()
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        first()
        middle = time.perf_counter_ns()
        second()
        b.append(time.perf_counter_ns() - middle)
        a.append(middle - start)
    return statistics.median(a) / 1000, statistics.median(b) / 1000


def fill_redis(client: redis.Redis, cache: RedisTagCache, prefix: str, keys: int) -> None:
    cache.set("narrow.0", b"v", ttl=TTL, versions=cache.tag_versions("narrow.0", ["narrow"]))
    expires_at = time.time() + TTL
    pipe = client.pipeline(transaction=False)
    for i in range(keys):  # the stored form `set` would write, sent FILL_BATCH at a time
        key = f"wide.{i}"
        versions = cache.tag_versions(key, ["wide"])  # a snapshot is for one key
        blob = pack_entry(b"v", expires_at=expires_at, delta=0.0, versions=versions)
        pipe.set(f"{prefix}{key}", blob, px=TTL * 1000)
        if i % FILL_BATCH == FILL_BATCH - 1:
            pipe.execute()
    pipe.execute()


def fill_memory(cache: InMemoryTagCache, keys: int) -> None:
    cache.set("narrow.0", b"v", ttl=TTL, versions=cache.tag_versions("narrow.0", ["narrow"]))
    for i in range(keys):
        key = f"wide.{i}"
        cache.set(key, b"v", ttl=TTL, versions=cache.tag_versions(key, ["wide"]))


def invalidation(cache, name: str, keys: int) -> tuple[str, float, float]:
    assert cache.get("wide.0") is not None and cache.get(f"wide.{keys - 1}") is not None
    one, wide = timed_pairs(lambda: cache.invalidate("narrow"), lambda: cache.invalidate("wide"), REPEATS)
    assert cache.get("wide.0") is None and cache.get(f"wide.{keys - 1}") is None
    return name, one, wide


def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    batch = []
    for key in client.scan_iter(match=prefix + "*", count=5000):
        batch.append(key)
        if len(batch) == 5000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keys", type=int, default=WIDE, metavar="N", help=f"keys under the wide tag (default {WIDE:,})"
    )
    args = parser.parse_args()
    if args.keys < 1:
        parser.error("--keys must be >= 1")
    return args


def main() -> None:
    keys = parse_args().keys
    started = time.perf_counter()
    client = redis.Redis.from_url(URL, socket_timeout=5)
    prefix = f"bench:{secrets.token_hex(4)}:"
    print(f"Redis: {URL} (prefix {prefix}); {REPEATS} invalidations per tag, {GETS} gets, {keys:,} keys")
    try:
        client.ping()
        cache = RedisTagCache(client, prefix)
        fill_redis(client, cache, prefix, keys)
        print(f"filled Redis: {keys:,} keys under the wide tag ({time.perf_counter() - started:.1f} s)")
        rows = [invalidation(cache, "redis", keys)]

        tags = ["user", "user.5f0c"]
        cache.set("user.5f0c", PAYLOAD, ttl=TTL, versions=cache.tag_versions("user.5f0c", tags))
        client.set(f"{prefix}plain", PAYLOAD, px=TTL * 1000)
        hit, plain = timed_pairs(lambda: cache.get("user.5f0c"), lambda: client.get(f"{prefix}plain"), GETS)
        assert cache.get("user.5f0c").value == client.get(f"{prefix}plain") == PAYLOAD
    finally:
        delete_prefixed(client, prefix)
        client.close()

    memory = InMemoryTagCache()
    fill_memory(memory, keys)
    rows.append(invalidation(memory, "in-memory", keys))
    memory.set("user.5f0c", PAYLOAD, ttl=TTL, versions=memory.tag_versions("user.5f0c", tags))
    memory_hit, _ = timed_pairs(lambda: memory.get("user.5f0c"), lambda: None, GETS)

    print()
    print(f"{'invalidate, median µs':<22}{'1 key':>10}{f'{keys:,} keys':>15}{f'ratio {keys:,}/1':>20}")
    for name, one, wide in rows:
        print(f"{name:<22}{one:>10.1f}{wide:>15.1f}{wide / one:>20.2f}")
    print()
    print(f"{'get, median µs':<22}{'hit':>10}{'plain GET':>15}{'ratio':>20}")
    label = f"redis (2 tags, {len(PAYLOAD)} B)"
    print(f"{label:<22}{hit:>10.1f}{plain:>15.1f}{hit / plain:>20.2f}")
    print(f"{'in-memory':<22}{memory_hit:>10.2f}")
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
