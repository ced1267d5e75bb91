"""bench/cluster_costs.py with a few operations: it starts its own Cluster, measures every row
and prints the ratios against their baselines. Needs redis-server and redis-cli, and fails,
never skips, without them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.bench import ROOT, bench_command


def test_each_operation_is_measured_beside_its_baseline():
    for program in ("redis-server", "redis-cli"):
        if shutil.which(program) is None:
            pytest.fail(f"bench/cluster_costs.py needs {program} (.ci/run installs it)", pytrace=False)
    argv = bench_command("cluster_costs.py", "--count", "20", "--rounds", "1")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {"own-read", "other-read", "one-tag", "shared-tag", "entry", "entry+fence"}
    assert all(float(row[0]) > 0 for row in rows.values())
    assert rows["other-read"][2] == "own-read" and rows["shared-tag"][2] == "one-tag"
    assert rows["entry+fence"][2] == "entry"
