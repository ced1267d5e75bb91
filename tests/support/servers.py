"""What the tests that start their own Redis servers share (tests/support/sentinel.py,
tests/support/cluster.py, the outage tests): free loopback ports, the programs (failing the test,
never skipping, when one is missing), waits with a deadline, and stopping a process for good."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def executable(name: str, tests: str) -> str:
    """The path of `name` (redis-server, redis-cli); fails the test when it is missing."""
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not os.access(found, os.X_OK):
        pytest.fail(
            f"{name} was not found (not on PATH, nor /usr/bin/{name}): the {tests} tests start "
            "their own servers and never skip. Install it (apt-get install redis-server).",
            pytrace=False,
        )
    return found


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition()` held within `timeout` seconds, asked every 50 ms through the Redis
    errors of a server starting or switching."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return True
        except redis.RedisError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Until `condition()` holds; fails the test after `timeout` seconds, saying `what` it
    waited for."""
    assert poll(condition, timeout), f"not within {timeout} s: {what}"


def wait_started(servers: str, what: str, ready: Callable[[], bool], timeout: float, logs: Path) -> None:
    """Until `ready()` holds; fails the test after `timeout` seconds with the tail of every log in
    the folder `logs`."""
    if poll(ready, timeout):
        return
    tails = "\n".join(f"{path.name}: {path.read_text()[-400:]}" for path in logs.glob("*.log"))
    pytest.fail(f"{servers} did not come up: {what}\n{tails}", pytrace=False)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM (after SIGCONT: a stopped process would not act on it), then SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def linked_to(replication: dict, master: int) -> bool:
    """Whether a server whose INFO replication is `replication` is a replica of the master on
    port `master`, its link up."""
    return (
        replication.get("role") == "slave"
        and replication.get("master_port") == master
        and replication.get("master_link_status") == "up"
    )
