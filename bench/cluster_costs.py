"""Benchmark: what the Redis Cluster layout (decision 0008, adapters/redis/cluster_stores.py) costs,
each against its baseline measured in the same run, on a throwaway three-master Cluster
(tests/support/cluster.py; needs redis-server and redis-cli, and pytest, of the `test` extra).

    own-read         the session state and the caller's own entry, read along (one script)
    other-read       the state, then another group's entry (two scripts), to own-read
    one-tag          invalidating one user's tag (one increment)
    shared-tag       invalidating `user` (256 increments, pipelined per master), to one-tag
    connect          a new node connection, one PING
    connect+fence    the same that fences the groups it serves first (CLUSTER_FENCE), to connect

Each figure is the median of --rounds rounds of --count operations, in µs per operation, with
its ratio to its baseline. Keys live under a random `bench:cluster:` prefix, on a Cluster that
is stopped at the end.

    .venv/bin/python bench/cluster_costs.py [--count N] [--rounds R]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path
from uuid import UUID, uuid4

import redis
from fence_cost import per_operation  # bench/, this script's directory, is first on sys.path

from adapters.caching import keys
from adapters.caching.read_ahead import ReadAhead
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.cluster_stores import ClusterTagCache, ClusterUserStateStore
from adapters.redis.fence import cluster_fence
from domain.session_state.model import AccountStatus, Identity, UserState, Versioned

ROOT = Path(__file__).resolve().parents[1]


def other_group_user(user_id: UUID) -> UUID:
    while True:
        other = uuid4()
        if keys.slot_group(keys.user(other)) != keys.slot_group(keys.user(user_id)):
            return other


def measure(url: str, count: int, rounds: int) -> dict[str, float]:
    prefix = f"bench:cluster:{secrets.token_hex(4)}:"
    client = ClusterClient(url, socket_timeout=5)
    ahead = ReadAhead()
    cache = ClusterTagCache(client, prefix, ahead=ahead)
    states = ClusterUserStateStore(client, prefix, read_along=cache)
    me = uuid4()
    other = other_group_user(me)
    for user_id in (me, other):
        key = keys.user(user_id)
        cache.set(key, b"x" * 300, ttl=600, versions=cache.tag_versions(key, keys.user_tags(user_id)))
        identity = Identity(f"{user_id}@bench.io", AccountStatus.ACTIVE)
        states.write(UserState(user_id, identity=Versioned(1, identity)))

    def read(target: UUID):
        def operation() -> object:
            ahead.want(keys.user(target))
            states.read(me, reader="bench")
            entry = cache.get(keys.user(target))
            ahead.clear()
            assert entry is not None
            return entry

        return operation

    own = per_operation(read(me), count, rounds)
    other_read = per_operation(read(other), count, rounds)
    one_tag = per_operation(lambda: cache.invalidate(keys.user(me)), count, rounds)
    shared = per_operation(lambda: cache.invalidate(keys.USER), max(1, count // 20), rounds)

    node = client.client.get_primaries()[0]

    def connect(fenced: bool):
        def operation() -> object:
            connection = redis.Connection(host=node.host, port=node.port)
            connection.connect()
            if fenced:
                cluster_fence(connection, prefix)
            connection.send_command("PING")
            reply = connection.read_response()
            connection.disconnect()
            return reply

        return operation

    bare = per_operation(connect(False), max(1, count // 5), rounds)
    fenced = per_operation(connect(True), max(1, count // 5), rounds)
    client.close()
    return {
        "own-read": own,
        "other-read": other_read,
        "one-tag": one_tag,
        "shared-tag": shared,
        "connect": bare,
        "connect+fence": fenced,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="operations a round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the median kept (default 5)")
    args = parser.parse_args(argv)
    if args.count < 20 or args.rounds < 1:
        parser.error("--count must be >= 20 and --rounds >= 1")
    sys.path.append(str(ROOT))  # the Cluster is the tests' (tests/support), not installed
    from tests.support.cluster import redis_cluster

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as directory:
        print("starting a Redis Cluster: three masters", file=sys.stderr, flush=True)
        with redis_cluster(Path(directory)) as cluster:
            results = measure(cluster.url(), args.count, args.rounds)
    baselines = {"other-read": "own-read", "shared-tag": "one-tag", "connect+fence": "connect"}
    print(f"{'operation':<15}{'µs':>9}{'ratio':>9}  baseline")
    for name, micros in results.items():
        baseline = baselines.get(name)
        ratio = f"{micros / results[baseline]:>9.2f}  {baseline}" if baseline else ""
        print(f"{name:<15}{micros:>9.1f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
