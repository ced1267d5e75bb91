"""`user-service relay` and `user-service worker` as real processes, for the tests that kill them.

`EventProcess(kind, env, log_dir)` runs `user-service <kind> [args]` with exactly `env` (plus
PATH and the Python path of this checkout), its output in a log file; `stop()` sends SIGTERM and
waits, `kill()` sends SIGKILL. Every process started through the `event_processes` fixture is
killed at the end of the test, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class EventProcess:
    def __init__(
        self, kind: str, env: Mapping[str, str], log_dir: Path, args: Sequence[str] = (), name: str = ""
    ) -> None:
        self.kind = kind
        self.log = log_dir / f"{name or kind}-{time.monotonic_ns()}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "user-service"), kind, *args],
                env=environment,
                cwd=log_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait: the process finishes what it has in hand. Its exit status."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.kind} did not stop within {timeout}s:\n{self.log_tail()}") from None

    def kill(self) -> None:
        """SIGKILL: no goodbye to the broker or the database."""
        if self.alive:
            self.process.kill()
        self.process.wait(10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        """Until `text` appears in the log; fails with the log's tail when the process dies first."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if not self.alive:
                raise AssertionError(f"{self.kind} exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                tail = self.log_tail()
                raise AssertionError(f"{text!r} not logged by {self.kind} within {timeout}s:\n{tail}")
            time.sleep(0.05)


class EventProcesses:
    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.started: list[EventProcess] = []

    def start(
        self, kind: str, env: Mapping[str, str], *args: str, name: str = "", ready: str | None = None
    ) -> EventProcess:
        """Start `user-service <kind> <args>`; with `ready`, wait until that text is logged
        (a worker logs `operation=events.consume` once its consumers are registered)."""
        process = EventProcess(kind, env, self._log_dir, args, name)
        self.started.append(process)
        if ready is not None:
            process.wait_for_log(ready)
        return process

    def worker(self, env: Mapping[str, str], *subscribers: str, name: str = "") -> EventProcess:
        args = [arg for subscriber in subscribers for arg in ("--subscriber", subscriber)]
        return self.start("worker", env, *args, name=name or "worker", ready="operation=events.consume")

    def relay(self, env: Mapping[str, str], name: str = "") -> EventProcess:
        return self.start("relay", env, name=name or "relay", ready="operation=relay.start")


@pytest.fixture
def event_processes(tmp_path: Path) -> Iterator[EventProcesses]:
    processes = EventProcesses(tmp_path)
    try:
        yield processes
    finally:
        for process in processes.started:
            with contextlib.suppress(Exception):
                process.kill()
