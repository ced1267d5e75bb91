"""`user-service run` as a user starts it: several workers share the Redis cache and /metrics
adds up every worker's counters; the in-process cache is refused with several workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests import factories
from tests.e2e.conftest import BIN, ROOT, login_everywhere, start, stop

REQUESTS = 40
_HITS = re.compile(r'^cache_hits_total\{policy="user_by_id"\} (\S+)$', re.MULTILINE)
_MISSES = re.compile(r'^cache_misses_total\{policy="user_by_id"\} (\S+)$', re.MULTILINE)


def workers(server) -> set[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def replace_one_worker(server) -> None:
    """A worker exits (as after max_requests, or a crash); gunicorn starts another, and the
    server goes on serving, metrics included."""
    before = workers(server)
    assert len(before) == 2
    os.kill(min(before), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = workers(server)
        if len(now) == 2 and now != before:
            return
        time.sleep(0.1)
    raise AssertionError(f"no replacement worker: {before} -> {workers(server)}\n{server.log_tail()}")


def test_two_workers_share_the_cache_and_metrics_count_both(server_env, tmp_path, faker):
    def argv(port: int) -> list[str]:
        return [str(BIN / "user-service"), "run", "--port", str(port), "--workers", "2", "--threads", "1"]

    # No SECRET_KEY: `run` makes one that every worker shares, so a token from one works on both.
    env = {name: value for name, value in server_env.items() if name != "SECRET_KEY"}
    server = start("run", env, tmp_path, argv)
    try:
        data = factories.registration(faker)
        created = server.request(
            "POST", "/api/users", json.dumps(data).encode(), {"Content-Type": "application/json"}
        )
        assert created.status == 201, created.body
        login_everywhere((server,), data["email"], data["password"])
        path = f"/api/users/{json.loads(created.body)['id']}"
        for _ in range(REQUESTS):  # a new connection each: the kernel spreads them over the workers
            assert server.request("GET", path).status == 200
        text = server.request("GET", "/metrics").body.decode()
        replace_one_worker(server)
        assert server.request("GET", "/health/live").status == 200
        assert server.request("GET", "/metrics").status == 200
        assert server.request("GET", path).status == 200
    finally:
        stop(server)
    hits, misses = (float(pattern.search(text)[1]) for pattern in (_HITS, _MISSES))
    # One load in all, and every hit counted whichever worker answered it or /metrics.
    assert misses == 1 and hits == REQUESTS - 1, text


def test_the_in_process_cache_is_refused_with_several_workers(server_env):
    env = {**server_env, "CACHE_URL": "memory"}
    result = subprocess.run(
        [str(BIN / "user-service"), "run", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CACHE_URL='memory' is one process's cache, and 2 workers were asked for" in result.stderr
