"""Stampede protection across processes: 32 readers in 2 processes (16 threads each) hit a hot
key the moment it has expired or been invalidated; the source is loaded once, and nobody waits
much longer than that one load. On Redis and on the host's shared SQLite file."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time

import pytest
import redis

from adapters.caching.read_through import Policy, ReadThrough
from adapters.local import LocalStore, SqliteTagCache
from adapters.redis.tag_cache import RedisTagCache
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

PROCESSES, THREADS = 2, 16
LOAD_SECONDS = 0.3
POLICY = Policy("test_stampede", ttl=60, beta=1.0)
TAGS = ("user", "user.hot")


def _cache(where: str):
    """The cache at `where`: a Redis key prefix, or the path of a local store's file."""
    if where.startswith("/"):
        return SqliteTagCache(LocalStore(where))
    return RedisTagCache(redis.Redis.from_url(REDIS_URL, socket_timeout=5), where)


def _reader_process(where: str, barrier, results, loads) -> None:
    reads = ReadThrough(_cache(where), lease_ttl=5)

    def load() -> bytes:
        with loads.get_lock():
            loads.value += 1
        time.sleep(LOAD_SECONDS)  # a slow query
        return b"fresh"

    def reader() -> None:
        barrier.wait()
        started = time.perf_counter()
        value = reads.fetch("user.hot", TAGS, POLICY, load)
        results.put((value, time.perf_counter() - started))

    threads = [threading.Thread(target=reader) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture(params=["redis", "local"])
def where(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "cache.db")
        return
    client = redis_client()
    prefix = f"test:stampede:{secrets.token_hex(6)}:"
    yield prefix
    delete_prefixed(client, prefix)
    client.close()


@pytest.mark.parametrize("how", ["expired", "invalidated"])
def test_one_load_across_processes_and_nobody_waits_longer_than_it(where: str, how: str) -> None:
    cache = _cache(where)
    if how == "expired":
        cache.set("user.hot", b"old", ttl=0.05, versions=cache.tag_versions("user.hot", TAGS))
        time.sleep(0.1)
    else:
        cache.set("user.hot", b"old", ttl=60, versions=cache.tag_versions("user.hot", TAGS))
        cache.invalidate("user.hot")

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES * THREADS)
    results, loads = context.Queue(), context.Value("i", 0)
    processes = [
        context.Process(target=_reader_process, args=(where, barrier, results, loads))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in range(PROCESSES * THREADS)]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0

    loads = loads.value
    waits = sorted(seconds for _, seconds in outcomes)
    median = waits[len(waits) // 2]
    print(f"{how}: loads={loads} wait min={waits[0]:.3f}s median={median:.3f}s max={waits[-1]:.3f}s")
    assert {value for value, _ in outcomes} == {b"fresh"}  # never the stale value
    assert loads == 1
    assert waits[-1] < LOAD_SECONDS + 0.25  # the slowest waited for that one load, not a queue of them
