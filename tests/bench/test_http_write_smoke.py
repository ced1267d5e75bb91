"""bench/http_write.py --duration 1: both configurations' PATCH and their peers' UPDATE run
without a failed request. Needs wrk, Redis and PostgreSQL, and fails, never skips, without them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_every_write_scenario_runs(tmp_path):
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    argv = [
        sys.executable,
        str(ROOT / "bench" / "http_write.py"),
        "--duration",
        "1",
        "--json",
        str(tmp_path / "w.json"),
    ]
    if url := os.environ.get("TEST_REDIS_URL"):
        argv += ["--redis-url", url]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "w.json").read_text())
    assert set(results) == {"sqlite", "sqla-sqlite", "postgres", "sqla-postgres"}
    assert all(result["rps"] > 0 and result["error"] is None for result in results.values())
