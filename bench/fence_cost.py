"""Benchmark: what the failover fence (adapters/redis/fence.py) costs a Redis connection.

Measured in one run on one Redis, each the median of --rounds rounds of --count operations:

    ping             PING on a connected connection: the round trip, the baseline
    fence            FENCE on a connected connection, the epoch already current (what every
                     connection runs once per key prefix when it connects)
    connect          a new connection: TCP connect, the handshake (HELLO/SELECT), one PING
    connect+fence    the same connection class with the fence installed for one prefix

It prints µs per operation and each one's ratio to its baseline (fence to ping, connect+fence
to connect). Keys live under a `bench:fence:<random>:` prefix, deleted at the end.

    .venv/bin/python bench/fence_cost.py [--redis-url URL] [--count N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable

import redis

from adapters.redis.fence import EPOCH_KEY, REPLID_KEY, fence, install_fence

DEFAULT_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def per_operation(operation: Callable[[], object], count: int, rounds: int) -> float:
    """Median µs per call of `operation` over `rounds` rounds of `count` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            operation()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def connecting(client: redis.Redis) -> Callable[[], object]:
    """A new connection of `client`'s pool class, connected, one PING, closed."""
    pool = client.connection_pool

    def connect() -> object:
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.connect()
        connection.send_command("PING")
        reply = connection.read_response()
        connection.disconnect()
        return reply

    return connect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    parser.add_argument("--count", type=int, default=2000, help="operations per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the median taken (default 5)")
    args = parser.parse_args(argv)
    prefix = f"bench:fence:{secrets.token_hex(4)}:"
    plain = redis.Redis.from_url(args.redis_url)
    fenced = redis.Redis.from_url(args.redis_url)
    try:
        plain.ping()
    except redis.RedisError as error:
        print(f"Redis is not reachable at {args.redis_url}: {error}", file=sys.stderr)
        return 2
    install_fence(fenced, prefix)
    try:
        connection = plain.connection_pool.get_connection()
        try:

            def ping() -> object:
                connection.send_command("PING")
                return connection.read_response()

            results = {
                "ping": per_operation(ping, args.count, args.rounds),
                "fence": per_operation(lambda: fence(connection, prefix), args.count, args.rounds),
            }
        finally:
            plain.connection_pool.release(connection)
        connections = max(1, args.count // 10)  # each costs a TCP handshake: fewer of them
        results["connect"] = per_operation(connecting(plain), connections, args.rounds)
        results["connect+fence"] = per_operation(connecting(fenced), connections, args.rounds)
    finally:
        plain.delete(prefix + EPOCH_KEY, prefix + REPLID_KEY)
        plain.close()
        fenced.close()
    print_table(results, {"fence": "ping", "connect+fence": "connect"})
    return 0


def print_table(results: dict[str, float], baselines: dict[str, str]) -> None:
    """µs per operation, and each one's ratio to its baseline (`baselines`: name to baseline)."""
    print(f"{'operation':<15}{'µs':>9}{'ratio':>9}  baseline")
    for name, micros in results.items():
        baseline = baselines.get(name)
        ratio = f"{micros / results[baseline]:>9.2f}  {baseline}" if baseline else ""
        print(f"{name:<15}{micros:>9.1f}{ratio}")


if __name__ == "__main__":
    sys.exit(main())
