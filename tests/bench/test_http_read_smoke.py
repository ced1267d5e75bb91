"""bench/http_read.py --smoke: every scenario starts, answers the expected status and serves wrk
without errors (1 s each, no targets judged). Needs wrk, Redis and PostgreSQL, and fails, never
skips, without them."""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest

from tests.bench import ROOT, bench_command

pytestmark = pytest.mark.slow
TIMEOUT = 180


def test_every_scenario_runs():
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk (.ci/run installs it)", pytrace=False)
    argv = bench_command("http_read.py", "--smoke")
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
