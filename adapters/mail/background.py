"""Delivery off the request path: a mail is queued and sent by a worker thread."""

from __future__ import annotations

import atexit
import logging
import queue
import threading

from domain.mail import Mail
from ports.mail import Mailer

log = logging.getLogger(__name__)


class BackgroundMailer:
    """Queues mails for `inner` and returns at once, so a request never waits on (nor, by its
    duration, reveals) an SMTP conversation, and a mail outage does not hold requests up.
    A failed delivery is logged and retried `attempts` times; at exit the queue is drained for
    up to `drain_timeout` seconds."""

    def __init__(self, inner: Mailer, attempts: int = 3, drain_timeout: float = 10.0) -> None:
        self._inner = inner
        self._attempts = attempts
        self._drain_timeout = drain_timeout
        self._queue: queue.Queue[Mail | None] = queue.Queue(maxsize=10_000)
        self._worker = threading.Thread(target=self._run, name="mailer", daemon=True)
        self._worker.start()
        atexit.register(self.close)

    def send(self, mail: Mail) -> None:
        try:
            self._queue.put_nowait(mail)
        except queue.Full:
            log.error("operation=mail.dropped template=%s: the mail queue is full", mail.template)
            raise

    def close(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(self._drain_timeout)

    def _run(self) -> None:
        while (mail := self._queue.get()) is not None:
            for attempt in range(1, self._attempts + 1):
                try:
                    self._inner.send(mail)
                    break
                except Exception:
                    log.warning(
                        "operation=mail.retry template=%s attempt=%d", mail.template, attempt, exc_info=True
                    )
            else:
                log.error(
                    "operation=mail.failed template=%s: given up after %d attempts",
                    mail.template,
                    self._attempts,
                )
