"""bench/events.py --smoke: the write path's pairs, a relay and a worker as processes, a few
events end to end and a small burst, the schema, queues and keys cleaned up (no figure judged).
Needs PostgreSQL, RabbitMQ and Redis, and fails, never skips, without them."""

from __future__ import annotations

import os
import sys

import pytest

from tests.bench import ROOT, run_script
from tests.integration.backends import postgres_url
from tests.support.rabbitmq import AMQP_URL, amqp_connection

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TIMEOUT = 180
UNAVAILABLE = 2  # the script's exit status when a server is out of reach


def servers() -> list[str]:
    """The test suite's servers (TEST_POSTGRES_URL, TEST_AMQP_URL, TEST_REDIS_URL), as given; the
    script works in a schema, an EVENTS_PREFIX and a key prefix of its own, deleted afterwards."""
    argv = ["--postgres-url", postgres_url(), "--amqp-url", AMQP_URL]
    redis = os.environ.get("TEST_REDIS_URL")
    return [*argv, "--redis-url", redis] if redis else argv


def test_the_benchmark_runs_and_cleans_up():
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    argv = [sys.executable, str(ROOT / "bench" / "events.py"), "--smoke", *servers()]
    process = run_script(argv, TIMEOUT)
    output = process.stdout
    if process.returncode == UNAVAILABLE:
        pytest.fail(f"a server the benchmark needs is missing:\n{output}", pytrace=False)
    assert process.returncode == 0, output
    for figure in ("commit -> visible", "events/s", "uow", "UpdateUser"):
        assert figure in output, output
    for cleanup in (
        "dropped schema bench_",
        "deleted the exchange and queues under bench.",
        "Redis keys under",
    ):
        assert cleanup in output, output
