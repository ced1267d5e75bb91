"""bench/http_read.py --smoke: every scenario starts, answers the expected status and serves wrk
without errors (1 s each, no targets judged); with --users, every read of a user asks for a
random one of the seeded users, and the read caches of hit, hit@redis+sentinel (--sentinel's
group), hit@redis+cluster (--cluster's) and local-hit, warmed with all of them, answer every read.
Needs wrk, Redis, PostgreSQL, redis-server and redis-cli, and fails, never skips, without them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.bench import ROOT, bench_command, run_script

pytestmark = pytest.mark.slow
TIMEOUT = 180
USERS = 200
SENTINEL_HIT = "hit@redis+sentinel"  # --sentinel's scenario
CLUSTER_HIT = "hit@redis+cluster"  # --cluster's
# The scenarios that read /api/users/{id}; `me` reads the session's own account.
READS = (
    "bare",
    "hit",
    SENTINEL_HIT,
    CLUSTER_HIT,
    "local-hit",
    "304",
    "local-304",
    "sqlite",
    "sqla-sqlite",
    "postgres",
    "sqla-postgres",
    "memoize",
)
# The scenarios whose read cache --users warms before their server starts.
WARMED = ("hit", SENTINEL_HIT, CLUSTER_HIT, "304", "local-hit", "local-304")


def run_smoke(*args: str) -> str:
    """bench/http_read.py --smoke `args`; its output, once it exited 0."""
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    for flag, program in (
        ("--sentinel", "redis-server"),
        ("--cluster", "redis-server"),
        ("--cluster", "redis-cli"),
    ):
        if flag in args and shutil.which(program) is None:
            pytest.fail(f"{flag} needs {program} (.ci/run installs it)", pytrace=False)
    argv = bench_command("http_read.py", "--smoke", *args)
    process = run_script(argv, TIMEOUT)
    output = process.stdout
    assert process.returncode == 0, output
    return output


def test_every_scenario_runs():
    run_smoke()


def test_cache_urls_are_checked_before_anything_starts():
    """--cache-url takes only a Redis CACHE_URL, a Sentinel one well formed: exit 2 at once."""
    for url, problem in (
        ("local:///tmp/cache.db", "not a Redis URL"),
        ("redis+sentinel://127.0.0.1:26379/", "the path must be /service_name or /service_name/db"),
        ("redis+cluster://127.0.0.1:7000/0", "a Cluster URL names its nodes only"),
    ):
        argv = bench_command("http_read.py", "--smoke", "--cache-url", url)
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done
        assert f"--cache-url {url}: {problem}" in done.stderr


def test_with_users_every_read_asks_for_random_seeded_users(tmp_path):
    """The users are seeded, the reader (an admin) may read them all (a 403 would fail the
    scenario), and wrk asked each scenario for many of them, never for more than there are.
    The warmed caches answered every read of the measured runs: the service counted a hit for
    each request wrk completed (in-flight ones at the end may add a few) and not one miss, though
    before hit's and local-hit's runs only two of the ids had been read (smoke mode has no warm-up).
    --sentinel's hit@redis+sentinel and --cluster's hit@redis+cluster are measured as hit, on
    the Sentinel group's master and on the Cluster, and follow hit in the table."""
    report = tmp_path / "report.json"
    output = run_smoke("--users", str(USERS), "--json", str(report), "--sentinel", "--cluster")
    assert f"seeded {USERS:,} of {USERS:,} users" in output
    # hit's, hit@redis+sentinel's, hit@redis+cluster's, local-hit's
    assert output.count(f"warmed {USERS:,} of {USERS:,} cache entries") == 4

    document = json.loads(report.read_text())
    assert document["context"]["users"] == USERS
    assert list(document["context"]["cache_urls"]) == [SENTINEL_HIT, CLUSTER_HIT]
    assert document["context"]["cache_urls"][SENTINEL_HIT].startswith("redis+sentinel://127.0.0.1:")
    assert document["context"]["cache_urls"][CLUSTER_HIT].startswith("redis+cluster://127.0.0.1:")
    names = [scenario["name"] for scenario in document["scenarios"]]
    assert names[names.index("hit") + 1 : names.index("hit") + 3] == [SENTINEL_HIT, CLUSTER_HIT]
    scenarios = {scenario["name"]: scenario for scenario in document["scenarios"]}
    for name in READS:
        scenario = scenarios[name]
        assert scenario["error"] is None, scenario
        assert 1 < scenario["distinct_ids"] <= USERS, scenario
    assert scenarios["me"]["distinct_ids"] is None
    for name in WARMED:
        scenario = scenarios[name]
        assert scenario["cache_misses"] == 0, scenario
        assert scenario["cache_hits"] >= scenario["requests"], scenario
    assert scenarios["sqlite"]["cache_misses"] is None  # counted only where there is a cache
