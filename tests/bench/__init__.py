"""Smoke runs of the benchmark scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench_command(script: str, *args: str) -> list[str]:
    """The command running bench/`script` with `args`, on the test suite's Redis when
    TEST_REDIS_URL says which (the scripts' keys are under a random prefix they delete
    afterwards, so any database will do); unset, the script's own default."""
    url = os.environ.get("TEST_REDIS_URL")
    return [sys.executable, str(ROOT / "bench" / script), *args, *(["--redis-url", url] if url else [])]
