"""bench/soak.py for a short run: every fault kind happens and every "never" column is 0. Needs
PostgreSQL, RabbitMQ and redis-server, and fails, never skips, without them."""

from __future__ import annotations

import re
import sys

import pytest

from tests.bench import ROOT, run_script
from tests.integration.backends import postgres_url
from tests.support.rabbitmq import AMQP_URL, amqp_connection
from tests.support.servers import executable

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
DURATION = 30  # the shortest run with room for each fault kind, a few seconds each
SEED = "1"  # the same fault schedule every run
TIMEOUT = 300  # setup, the load, the events drained (a retry may wait 30 s), the final checks
NEVER = (
    "stale reads",
    "lost field updates",
    "accepted after logout",
    "5xx other than 503 in outages",
    "events lost",
    "events applied twice",
)
FAULTS = ("redis paused", "redis killed", "database cut")


def test_a_short_soak_under_every_fault_finds_nothing():
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    executable("redis-server", "soak")
    argv = [sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", str(DURATION), "--seed", SEED]
    argv += ["--postgres-url", postgres_url(), "--amqp-url", AMQP_URL]
    process = run_script(argv, TIMEOUT)
    output = process.stdout
    assert process.returncode == 0, output
    assert "events durable" in output, output  # the durable transport ran, not in-process events
    for fault in FAULTS:
        assert re.search(rf"^{fault}\s+[1-9]", output, re.MULTILINE), f"no {fault}:\n{output}"
    for column in NEVER:
        assert re.search(rf"^{re.escape(column)}\s+0$", output, re.MULTILINE), f"{column}:\n{output}"
    for cleanup in ("dropped schema bench_", "deleted the exchange and queues under soak."):
        assert cleanup in output, output
