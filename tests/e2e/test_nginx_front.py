"""The production front of deploy/nginx.conf: 50 clients sending a body slowly (headers, then a
byte, then nothing) cannot hold gunicorn's two sync workers, because nginx reads bodies before
gunicorn sees the request. A cached GET's median stays under twice its idle value, and the same
50 connections straight to gunicorn show what the front prevents.

nginx runs as this user, from a prefix of the test's own (Debian's package; .ci/run installs
it), with deploy/nginx.conf included as a deployment would include it; only the ports differ.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import factories
from tests.e2e.conftest import BIN, ROOT, Server, free_port, start, stop

pytestmark = pytest.mark.slow
SLOW_CLIENTS = 50
SAMPLES = 40
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def gunicorn(server_env, tmp_path) -> Iterator[Server]:
    def argv(port: int) -> list[str]:
        return [str(BIN / "gunicorn"), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}", "wsgi:app"]

    server = start("gunicorn", {**server_env, "PROXY_HOPS": "1"}, tmp_path, argv)
    yield server
    stop(server)


@pytest.fixture
def nginx(gunicorn: Server, tmp_path) -> Iterator[Server]:
    if not Path(NGINX).exists():
        pytest.fail(
            "nginx is not installed (apt-get install -y nginx-light; .ci/run installs it)", pytrace=False
        )
    port = free_port()
    prefix = tmp_path / "nginx"
    for folder in ("logs", "temp", "conf"):
        (prefix / folder).mkdir(parents=True)
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn.port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (prefix / "conf" / "user-service.conf").write_text(site)
    temp = prefix / "temp"
    (prefix / "conf" / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    include {prefix}/conf/user-service.conf;
}}
"""
    )
    log = prefix / "logs" / "nginx.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "conf" / "nginx.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    front = Server("nginx", port, process, log)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError):
            if front.request("GET", "/health/live").status == 200:
                break
        assert process.poll() is None, (
            f"nginx exited:\n{front.log_tail()}\n{(prefix / 'logs/error.log').read_text()}"
        )
        assert time.monotonic() < deadline, "nginx did not answer within 10 s"
        time.sleep(0.1)
    yield front
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    if process.poll() is None:
        process.kill()


def post(server: Server, path: str, body: dict) -> dict:
    response = server.request("POST", path, body=json.dumps(body).encode(), headers=JSON)
    assert response.status in (200, 201), response.body
    return json.loads(response.body)


def signed_in(server: Server, faker) -> tuple[str, dict[str, str]]:
    data = factories.registration(faker)
    user_id = post(server, "/api/users", data)["id"]
    token = post(server, "/api/auth/login", {"email": data["email"], "password": data["password"]})[
        "access_token"
    ]
    return f"/api/users/{user_id}", {"Authorization": f"Bearer {token}"}


def median_get(server: Server, path: str, headers: dict[str, str]) -> float:
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = server.request("GET", path, headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status == 200
    return statistics.median(times)


@contextlib.contextmanager
def slow_bodies(port: int) -> Iterator[list[socket.socket]]:
    """SLOW_CLIENTS connections that sent a POST's headers and one byte of its body, then wait."""
    sockets = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(
                b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            sockets.append(sock)
        time.sleep(0.5)  # let them reach whoever reads them
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_slow_bodies_do_not_hold_the_workers_behind_nginx(nginx, gunicorn, faker):
    path, headers = signed_in(nginx, faker)
    nginx.request("GET", path, headers=headers)  # cached
    idle = median_get(nginx, path, headers)
    with slow_bodies(nginx.port):
        loaded = median_get(nginx, path, headers)
    assert loaded < 2 * idle, f"median {loaded * 1000:.1f} ms under slow clients, {idle * 1000:.1f} ms idle"

    # Straight to gunicorn, the same clients take both workers: a GET waits for their timeout.
    with slow_bodies(gunicorn.port):
        started = time.perf_counter()
        with contextlib.suppress(OSError):
            gunicorn.request("GET", path, headers=headers)
        held = time.perf_counter() - started
    assert held > 2 * loaded, "without the front the slow clients should hold the workers"
    print(
        f"\nGET median behind nginx: idle {idle * 1000:.2f} ms, with {SLOW_CLIENTS} slow bodies "
        f"{loaded * 1000:.2f} ms ({loaded / idle:.2f}x); straight to gunicorn: {held * 1000:.0f} ms"
    )


def test_the_front_passes_the_client_address_and_request_id_and_limits_bodies(nginx):
    response = nginx.request("GET", "/health/live", headers={"X-Request-ID": "front-1"})
    assert response.headers["x-request-id"] == "front-1"
    assert response.headers.get("server") == "nginx"  # no version, no gunicorn
    generated = nginx.request("GET", "/health/live")
    assert len(generated.headers["x-request-id"]) == 32  # nginx's $request_id
    too_large = nginx.request("POST", "/api/users", body=b"{" + b" " * 70000 + b"}", headers=JSON)
    assert too_large.status == 413
