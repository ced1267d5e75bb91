"""OutageLog: a dependency's outage logged as state changes, not as a line per failed call.

With a dead Redis every request and every retry thread fails a call or two a second; a line
each would bury the log. So, per dependency:

* one WARNING when it stops answering (the first failure after it answered): the call and
  the error;
* while it stays down, at most one WARNING every `interval` seconds: the calls failed since the
  last line and how long it has been down (written on a failure, so a quiet outage stays quiet);
* one WARNING when it answers again: how long it was down and how many calls failed.

All three are WARNINGs so that whoever watches warnings sees an outage end as well as begin.
Counting every failure is the metrics' job: this only tells the story.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class OutageLog:
    def __init__(
        self,
        dependency: str,
        log: logging.Logger,
        *,
        what: str | None = None,
        effect: str = "",
        interval: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`dependency` names it in `operation=<dependency>.<event>`; `what` in the human text
        (default: the same); `effect`: what the service does meanwhile, said on the way down."""
        self._dependency, self._what, self._log = dependency, what or dependency, log
        self._effect = f"; {effect}" if effect else ""
        self._interval, self._monotonic = interval, monotonic
        self._lock = threading.Lock()
        self._down_since: float | None = None  # None: it answered last time
        self._logged_at = 0.0
        self._failed = 0  # calls failed in this outage
        self._unlogged = 0  # of those, the ones since the last line

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, call: str, error: object) -> None:
        """A call could not use the dependency; `error`: the exception or the reason."""
        # The lines are written under the lock, so that they come out in the order they tell.
        with self._lock:
            now = self._monotonic()
            if self._down_since is None:
                self._down_since, self._logged_at, self._failed, self._unlogged = now, now, 1, 0
                self._log.warning(
                    "operation=%s.unreachable call=%s error=%r: %s does not answer%s",
                    self._dependency,
                    call,
                    error,
                    self._what,
                    self._effect,
                )
                return
            self._failed += 1
            self._unlogged += 1
            if now - self._logged_at < self._interval:
                return
            self._log.warning(
                "operation=%s.still_unreachable failed=%d down_for=%.1fs: %s still does not answer",
                self._dependency,
                self._unlogged,
                now - self._down_since,
                self._what,
            )
            self._logged_at, self._unlogged = now, 0

    def answered(self) -> None:
        """A call reached the dependency and it answered."""
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            self._log.warning(
                "operation=%s.recovered down_for=%.1fs failed=%d: %s answers again",
                self._dependency,
                self._monotonic() - self._down_since,
                self._failed,
                self._what,
            )
            self._down_since, self._failed, self._unlogged = None, 0, 0
