"""End-to-end fixtures: real gunicorn processes over HTTP, sharing one SQLite file and one Redis.

Redis is TEST_REDIS_URL (default redis://127.0.0.1:6379/11); each test gets a random key prefix
whose keys are deleted afterwards. The tests fail, never skip, when Redis is missing.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
if not (BIN / "gunicorn").exists():  # another virtualenv: use the one running the tests
    BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    default_headers: dict[str, str] = field(default_factory=dict)  # e.g. an Authorization

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """One request on a fresh connection (gunicorn's sync worker closes after each response)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request(method, path, body=body, headers={**self.default_headers, **(headers or {})})
            response = connection.getresponse()
            data = response.read()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text.splitlines()[-lines:])


# The payment provider's signing secret (Standard Webhooks form), known to both servers.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e payment provider secret, 32b").decode()


@dataclass
class SharedCache:
    client: redis.Redis
    url: str
    prefix: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def shared_cache() -> Iterator[SharedCache]:
    """The Redis the servers share, under a fresh prefix whose keys are deleted afterwards."""
    client = redis_client()
    prefix = f"test:ryw:{secrets.token_hex(8)}:"
    try:
        yield SharedCache(client, REDIS_URL, prefix)
    finally:
        delete_prefixed(client, prefix)
        client.close()


@pytest.fixture
def server_env(tmp_path: Path, shared_cache: SharedCache) -> dict[str, str]:
    """The environment of every server process, with the database migrated."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # per-process /metrics
    env.update(
        APP_ENV="test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'users.db'}",
        CACHE_URL=shared_cache.url,
        CACHE_PREFIX=shared_cache.prefix,
        MAIL_BACKEND="log",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST="8",
        ARGON2_PARALLELISM="1",
        SECRET_KEY="e2e-only signing key shared by both servers",
        PAYMENT_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    result = subprocess.run(
        [str(BIN / "user-service"), "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"user-service migrate failed:\n{result.stdout}{result.stderr}"
    return env


def gunicorn_argv(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}", "wsgi:app"]


def start(
    name: str,
    env: dict[str, str],
    tmp_path: Path,
    argv: Callable[[int], list[str]] = gunicorn_argv,
    cwd: Path = ROOT,
) -> Server:
    """A server process (`argv(port)`, in `cwd`), live; stop it with `stop`."""
    server = _start(name, env, tmp_path, argv, cwd)
    try:
        _wait_live(server, time.monotonic() + STARTUP_TIMEOUT)
    except BaseException:
        stop(server)
        raise
    return server


def _start(
    name: str,
    env: dict[str, str],
    tmp_path: Path,
    argv: Callable[[int], list[str]] = gunicorn_argv,
    cwd: Path = ROOT,
) -> Server:
    port = free_port()
    log = tmp_path / f"server-{name}.log"
    with log.open("ab") as out:  # a server started again in a test appends to its log
        process = subprocess.Popen(
            argv(port),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown reaches the worker too
        )
    return Server(name, port, process, log)


def _wait_live(server: Server, deadline: float) -> None:
    while True:
        if server.process.poll() is not None:
            pytest.fail(
                f"server {server.name} exited with {server.process.returncode} before it was live; "
                f"log ({server.log}):\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            if server.request("GET", "/health/live").status == 200:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            pytest.fail(
                f"server {server.name} on port {server.port} not live after {STARTUP_TIMEOUT:.0f} s; "
                f"log ({server.log}):\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.1)


def stop(server: Server) -> None:
    """SIGTERM (gunicorn's master stops its worker gracefully), wait, then SIGKILL the group."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    if process.poll() is None:
        # The master would not stop: kill it and its worker, the whole process group it leads.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


@pytest.fixture
def servers(server_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two single-worker gunicorn servers, A and B, on the same database and Redis prefix."""
    with two_servers(server_env, tmp_path) as started:
        yield started


@contextlib.contextmanager
def two_servers(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Servers A and B with `env`, live; stopped on the way out."""
    started: list[Server] = []
    try:
        for name in ("A", "B"):
            started.append(_start(name, env, tmp_path))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for server in started:
            _wait_live(server, deadline)
        yield started[0], started[1]
    finally:
        for server in started:
            stop(server)


def login_everywhere(servers: tuple[Server, ...], email: str, password: str) -> dict:
    """Log in on the first server; every server sends the access token from then on."""
    body = json.dumps({"email": email, "password": password}).encode()
    response = servers[0].request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
    assert response.status == 200, response.body
    tokens = json.loads(response.body)
    for server in servers:
        server.default_headers["Authorization"] = f"Bearer {tokens['access_token']}"
    return tokens
