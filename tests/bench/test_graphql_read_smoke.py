"""bench/graphql_read.py --smoke: REST's hit and GraphQL's `user(id)` over GET, GET with its ETag
(304) and POST each answer as expected and serve wrk without errors (1 s each), every read a hit
of the Redis read cache. Needs wrk and Redis, and fails, never skips, without them."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.bench import bench_command, run_script

pytestmark = pytest.mark.slow
TIMEOUT = 120
SERVED = ("rest-hit", "graphql-get", "graphql-304", "graphql-post")


def test_every_scenario_runs_on_cache_hits(tmp_path):
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    report = tmp_path / "report.json"
    argv = bench_command("graphql_read.py", "--smoke", "--json", str(report))
    process = run_script(argv, TIMEOUT)
    output = process.stdout
    assert process.returncode == 0, output

    scenarios = {scenario["name"]: scenario for scenario in json.loads(report.read_text())["scenarios"]}
    assert set(scenarios) == {"bare", *SERVED}
    assert all(scenario["error"] is None and scenario["rps"] > 0 for scenario in scenarios.values())
    for name in SERVED:  # the script fails a scenario otherwise; checked here all the same
        assert scenarios[name]["cache_misses"] == 0, scenarios[name]
        assert scenarios[name]["cache_hits"] >= scenarios[name]["requests"], scenarios[name]
