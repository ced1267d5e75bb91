"""bench/http_write.py --duration 1: both configurations' PATCH and their peers' UPDATE run
without a failed request. Needs wrk, Redis and PostgreSQL, and fails, never skips, without them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.bench import ROOT, bench_command

pytestmark = pytest.mark.slow


def test_every_write_scenario_runs(tmp_path):
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    argv = bench_command("http_write.py", "--duration", "1", "--json", str(tmp_path / "w.json"))
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "w.json").read_text())
    assert set(results) == {"sqlite", "sqla-sqlite", "postgres", "sqla-postgres"}
    assert all(result["rps"] > 0 and result["error"] is None for result in results.values())
