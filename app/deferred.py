"""Commands a request hands over and answers without waiting for, so that neither the answer
nor its duration depends on what the command finds: a password reset request does the same
nothing in the request for a known email and an unknown one, and the lookup, the token and the
mail happen here, after the answer.

One daemon thread per process, started with the first command; a bounded queue (when it is
full the command runs in the request, which is slower, never lost); at exit the queue is
drained for up to `drain_timeout` seconds. A command that fails is logged with its type, never
with its fields (an email address is personal data)."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("user_service.deferred")


class DeferredCommands:
    def __init__(self, handle: Callable[[Any], Any], size: int = 1000, drain_timeout: float = 10.0) -> None:
        self._handle = handle
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, command: Any) -> None:
        self._start()
        try:
            self._queue.put_nowait(command)
        except queue.Full:
            log.warning("operation=deferred.full command=%s: run in the request", type(command).__name__)
            self._run(command)

    def join(self) -> None:
        """Wait until every command submitted so far has run (tests, and the drain at exit)."""
        self._queue.join()

    def _start(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        with self._lock:
            if self._worker is None or not self._worker.is_alive():  # none yet, or a forked copy
                self._worker = threading.Thread(target=self._serve, name="deferred-commands", daemon=True)
                self._worker.start()
                atexit.register(self._drain)

    def _serve(self) -> None:
        while True:
            command = self._queue.get()
            try:
                self._run(command)
            finally:
                self._queue.task_done()

    def _run(self, command: Any) -> None:
        try:
            self._handle(command)
        except Exception:
            log.exception("operation=deferred.failed command=%s", type(command).__name__)

    def _drain(self) -> None:
        done = threading.Thread(target=self._queue.join, daemon=True)
        done.start()
        done.join(self._drain_timeout)
