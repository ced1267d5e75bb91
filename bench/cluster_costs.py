"""Benchmark: what the Redis Cluster layout (decision 0008, adapters/redis/cluster_stores.py) costs,
each against its baseline measured in the same run, on a throwaway three-master Cluster
(tests/support/cluster.py; needs redis-server and redis-cli, and pytest, of the `test` extra).

    own-read         the session state and the caller's own entry, read along (one script)
    other-read       the state, then another group's entry (two scripts), to own-read
    one-tag          invalidating one user's tag (one increment)
    shared-tag       invalidating `user` (256 increments, pipelined per master), to one-tag
    entry            the cache's read script of one entry, without the fence
    entry+fence      the same, its group fenced first (GROUP_FENCE: what every read runs), to
                     entry

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

from fence_cost import per_operation, print_table  # bench/, this script's directory, is first on sys.path

from adapters.caching import keys
from adapters.caching.read_ahead import ReadAhead
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.cluster_stores import FENCED_GET, ClusterTagCache, ClusterUserStateStore, run
from adapters.redis.tag_cache import GET_ENTRY
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

    key = keys.user(me)
    at = f"{prefix}{{{keys.slot_group(key)}}}"
    scripts: dict[str, object] = {}
    unfenced = GET_ENTRY + "return get_entry(KEYS[1], ARGV[1], false)"
    bare = per_operation(lambda: run(client.client, scripts, unfenced, [at + key], [at]), count, rounds)
    fenced = per_operation(lambda: run(client.client, scripts, FENCED_GET, [at + key], [at]), count, rounds)
    client.close()
    return {
        "own-read": own,
        "other-read": other_read,
        "one-tag": one_tag,
        "shared-tag": shared,
        "entry": bare,
        "entry+fence": fenced,
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
    print_table(results, {"other-read": "own-read", "shared-tag": "one-tag", "entry+fence": "entry"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
