"""bench/http_read.py --smoke: every scenario starts, answers the expected status and serves wrk
without errors (1 s each, no targets judged). Needs wrk, Redis and PostgreSQL, and fails, never
skips, without them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TIMEOUT = 180


def redis_url() -> list[str]:
    """--redis-url TEST_REDIS_URL as given (the script's keys are under a random prefix it deletes
    afterwards, so any database will do); unset, the script's own default."""
    url = os.environ.get("TEST_REDIS_URL")
    return ["--redis-url", url] if url else []


def test_every_scenario_runs():
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    argv = [sys.executable, str(ROOT / "bench" / "http_read.py"), "--smoke", *redis_url()]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the script stops its servers and drops its schema
        output, _ = process.communicate(timeout=30)
        pytest.fail(f"bench/http_read.py --smoke took over {TIMEOUT} s:\n{output}", pytrace=False)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
