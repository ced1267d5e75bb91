"""A relay that dies by SIGKILL right after the broker confirmed its first batch, before it marks
the batch sent: the crash window for duplicates (docs/events.md, "The outbox and the relay").

`python -m tests.integration.event_faults_support` runs the service's own relay,
`app.events.processes.run_relay`, built as `user-service relay` builds it; only the publisher is
wrapped, so that once `publish()` has returned (every message confirmed) the process kills
itself. `run_relay_dying_after_publish(env, log_dir)` runs it as a subprocess and waits for it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.rabbitmq.publisher import RabbitPublisher
from ports.event_transport import Outgoing

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.event_faults_support"
KILLED = "operation=test.killed_after_publish"  # logged just before the SIGKILL

log = logging.getLogger("user_service.events")


class DiesAfterPublishing(RabbitPublisher):
    def publish(self, messages: Sequence[Outgoing]) -> None:
        super().publish(messages)  # returns only once the broker confirmed every one
        if messages:
            log.warning("%s count=%d", KILLED, len(messages))
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Ended:
    returncode: int
    log: str


def run_relay_dying_after_publish(env: Mapping[str, str], log_dir: Path, timeout: float = 30.0) -> Ended:
    """Runs the dying relay with exactly `env` (plus PATH and this checkout's Python path) until
    it exits; killed and reported when it has not within `timeout`."""
    log_file = log_dir / "dying-relay.log"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE],
            env=environment,
            cwd=log_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            text = log_file.read_text(errors="replace")
            raise AssertionError(f"the dying relay did not die within {timeout}s:\n{text}") from None
    return Ended(returncode, log_file.read_text(errors="replace"))


def main() -> None:
    from app import config
    from app.events import processes
    from app.factory import create_app
    from app.logs import configure

    configure()
    settings = config.load()
    container = create_app().extensions["container"]
    processes.RabbitPublisher = DiesAfterPublishing  # what run_relay publishes with
    processes.run_relay(container, settings, processes.stop_on_signals())


if __name__ == "__main__":
    main()
