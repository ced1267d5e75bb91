"""Smoke runs of the benchmark scripts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench_command(script: str, *args: str) -> list[str]:
    """The command running bench/`script` with `args`, on the test suite's Redis when
    TEST_REDIS_URL says which (the scripts' keys are under a random prefix they delete
    afterwards, so any database will do); unset, the script's own default."""
    url = os.environ.get("TEST_REDIS_URL")
    return [sys.executable, str(ROOT / "bench" / script), *args, *(["--redis-url", url] if url else [])]


def run_script(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script to its end, its output and errors together; past `timeout`
    seconds it gets SIGTERM (the scripts stop their processes and delete what they made) and
    the test fails with what it printed."""
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"{Path(argv[1]).name} took over {timeout} s:\n{output}", pytrace=False)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(argv, process.returncode, output)
