# Over 200 lines: the relay, the soak's Redis server and the fault schedule belong together.
"""The faults of bench/soak.py: a TCP relay in front of PostgreSQL that it cuts, a redis-server of
its own that it pauses (SIGSTOP) and kills (SIGKILL, then started again, empty), and the seeded
schedule that applies them at random moments, each kind at least once."""

from __future__ import annotations

import contextlib
import random
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_PAUSE, REDIS_KILL, DB_CUT = "redis paused", "redis killed", "database cut"
KINDS = (REDIS_PAUSE, REDIS_KILL, DB_CUT)
LASTS = (2.0, 5.0)  # seconds a fault lasts, drawn uniformly
GAPS = (3.0, 8.0)  # seconds between two faults
WARM_UP = 3.0  # seconds of load before the first fault
LAST_QUIET = 3.0  # seconds of load after the last fault's end


class Relay:
    """Forwards 127.0.0.1:<port> to `target`. `cut()` drops every connection through it and refuses
    new ones (accepted, then closed at once, as a dead route or a stopped server would) until
    `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._refusing = False
        self._closed = False
        threading.Thread(target=self._accept, name="soak-relay", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            doomed, self._open = self._open, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._refusing:  # cut while connecting
                    client.close()
                    upstream.close()
                    continue
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, one: socket.socket, other: socket.socket) -> None:
        peers = {one: other, other: one}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._open = [sock for sock in self._open if sock not in peers]


class RedisServer:
    """redis-server on a free loopback port, no persistence (a restart comes back empty), its log
    in `directory`. Raises RuntimeError when it cannot be started."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(executable).exists():
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        self._executable, self._directory = executable, directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        log = (self._directory / f"redis-{self.starts}.log").open("wb")
        argv = [self._executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        probe = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                with contextlib.suppress(redis.RedisError):
                    if probe.ping():
                        return
                time.sleep(0.05)
        finally:
            probe.close()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within 10 s")

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)


@dataclass(frozen=True)
class Planned:
    kind: str
    at: float  # seconds after the load began
    lasts: float


def schedule(rng: random.Random, duration: float) -> list[Planned]:
    """Faults one after another at random moments of `duration` seconds of load: every kind once
    in a random order, then random kinds while time is left. ValueError when even the three do
    not fit."""
    kinds = list(KINDS)
    rng.shuffle(kinds)
    planned: list[Planned] = []
    # A short run (the smoke) shortens faults and gaps alike, so that each kind still fits.
    room = duration - WARM_UP - 1 - LAST_QUIET
    scale = max(0.0, min(1.0, room / (len(KINDS) * LASTS[1] + (len(KINDS) - 1) * GAPS[1])))
    at = WARM_UP + rng.uniform(0, 1)
    while True:
        kind = kinds[len(planned)] if len(planned) < len(kinds) else rng.choice(KINDS)
        lasts = rng.uniform(*LASTS) * scale
        if lasts < 0.5 or at + lasts > duration - LAST_QUIET:
            break
        planned.append(Planned(kind, at, lasts))
        at += lasts + rng.uniform(*GAPS) * scale
    if len(planned) < len(KINDS):
        raise ValueError(f"{duration:.0f} s is too short for one fault of each kind: give 25 s or more")
    return planned


@dataclass
class Applied:
    kind: str
    start: float  # time.monotonic()
    end: float | None = None


@dataclass
class Faults:
    """Applies `planned` from `began` on (time.monotonic()) in a thread, until done or `stop`."""

    redis: RedisServer
    database: Relay
    planned: list[Planned]
    log: Callable[[str], None]
    applied: list[Applied] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, began: float) -> None:
        for fault in self.planned:
            if self.stop.wait(max(0.0, began + fault.at - time.monotonic())):
                return
            self._apply(fault)

    def windows(self) -> list[Applied]:
        with self._lock:
            return list(self.applied)

    def _apply(self, fault: Planned) -> None:
        applied = Applied(fault.kind, time.monotonic())
        with self._lock:
            self.applied.append(applied)
        self.log(f"{fault.kind} for {fault.lasts:.1f} s")
        try:
            if fault.kind == REDIS_PAUSE:
                self.redis.pause()
                self.stop.wait(fault.lasts)
            elif fault.kind == REDIS_KILL:
                self.redis.kill()
                self.stop.wait(fault.lasts)
            else:
                self.database.cut()
                self.stop.wait(fault.lasts)
        finally:
            self.heal()
            applied.end = time.monotonic()

    def heal(self) -> None:
        """Everything up again: Redis resumed (or started again, empty, when killed), the
        database's relay passing connections."""
        self.redis.resume()
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        self.database.restore()
