"""bench/fence_cost.py with a few operations: every row measured, the ratios printed against
their baselines, and its keys gone afterwards. Needs Redis (TEST_REDIS_URL) and fails, never
skips, without it."""

from __future__ import annotations

import subprocess

from tests.bench import ROOT, bench_command
from tests.support.redis import REDIS_URL, redis_client


def test_each_operation_is_measured_beside_its_baseline():
    client = redis_client()  # fails the test when Redis is down
    argv = bench_command("fence_cost.py", "--redis-url", REDIS_URL, "--count", "20", "--rounds", "1")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {"ping", "fence", "connect", "connect+fence"}
    assert all(float(row[0]) > 0 for row in rows.values())
    assert rows["fence"][2] == "ping" and rows["connect+fence"][2] == "connect"
    try:
        assert not list(client.scan_iter(match="bench:fence:*"))
    finally:
        client.close()
