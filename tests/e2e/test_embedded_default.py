"""The embedded default as a new user serves it: the project installed with `pip install .`,
then `gunicorn -w 4 wsgi:app` (or `user-service run --workers 4`) in an empty folder with
nothing configured and no command run first.

The install is a fresh copy of the project built into a virtualenv of its own; the libraries it
depends on come from the test run's virtualenv (a path in the new one's site-packages), so the
test installs the project itself without downloading its dependencies again. The servers then
run from a folder outside the checkout: what they import is what was installed.

Every worker must see one database, one cache, one session state and one signing key: a token
is accepted by every worker, 500 rounds of PATCH -> GET -> GET show no stale read, a logout is
refused by every worker on the very next request, and a restart keeps tokens valid.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests import factories
from tests.e2e.conftest import ROOT, Server, start, stop

pytestmark = pytest.mark.slow
WORKERS = 4
ROUNDS = 500
BATCHES = 10  # of 8 requests per worker, at most, until every worker has answered
# Settings a developer's shell might carry: none of them may reach the servers.
SETTINGS = re.compile(
    r"APP_ENV|DATABASE_URL|CACHE_.*|SECRET_KEY|INSTANCE_PATH|MAIL_.*|SMTP_.*|ARGON2_.*|LOG_LEVEL|"
    r"PROMETHEUS_MULTIPROC_DIR|GUNICORN_CMD_ARGS|WEB_CONCURRENCY|PAYMENT_WEBHOOK_SECRET|SUBSCRIPTION_PLANS"
)
_ACCESS = re.compile(r"^<?(\d+)>? (\S+) (\S+) (\d{3})$", re.MULTILINE)
ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(s)s"  # gunicorn's: worker pid, method, path, status


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a virtualenv with the project installed from a fresh copy."""
    base = tmp_path_factory.mktemp("install")
    copy = base / "project"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "instance", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".hypothesis"
        ),
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = Path(
        subprocess.check_output(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (purelib / "test-run-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(copy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"pip install . failed:\n{result.stdout}{result.stderr}"
    shutil.rmtree(copy)  # nothing may be imported from the source tree
    return venv / "bin"


def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not SETTINGS.fullmatch(name)}


def gunicorn(bin_: Path):
    def argv(port: int) -> list[str]:
        return [  # gunicorn's own script lives where its package was installed, the test run's venv
            str(bin_ / "python"),
            "-m",
            "gunicorn",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            "--access-logformat",
            ACCESS_FORMAT,
            "wsgi:app",
        ]

    return argv


def user_service_run(bin_: Path):
    def argv(port: int) -> list[str]:
        return [str(bin_ / "user-service"), "run", "--port", str(port), "--workers", str(WORKERS)]

    return argv


def post(server: Server, path: str, data: dict, headers: dict | None = None):
    return server.request(
        "POST", path, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def login(server: Server, email: str, password: str) -> dict[str, str]:
    response = post(server, "/api/auth/login", {"email": email, "password": password})
    assert response.status == 200, response.body
    return {"Authorization": f"Bearer {json.loads(response.body)['access_token']}"}


def served_by(server: Server, path: str) -> dict[int, set[int]]:
    """Per worker pid, the statuses it answered for `path` (from the access log)."""
    found: dict[int, set[int]] = {}
    for pid, _method, url, status in _ACCESS.findall(server.log.read_text(errors="replace")):
        if url == path:
            found.setdefault(int(pid), set()).add(int(status))
    return found


def on_every_worker(server: Server, path: str, headers: dict[str, str], status: int, by_pid: bool) -> None:
    """GETs of `path`, each on a new connection (the workers take turns accepting, in no fixed
    order), every one answered with `status`, until each worker has answered one: read from the
    access log when `by_pid`, else simply 8 per worker."""
    for _ in range(BATCHES if by_pid else 1):
        answers = [server.request("GET", path, headers=headers).status for _ in range(8 * WORKERS)]
        assert set(answers) == {status}, answers
        if not by_pid:
            return
        time.sleep(0.2)  # the access log line follows the response
        answered = [pid for pid, statuses in served_by(server, path).items() if status in statuses]
        if len(answered) == WORKERS:
            return
    raise AssertionError(f"not every worker answered {path} with {status}: {served_by(server, path)}")


def exercise(server: Server, faker, by_pid: bool) -> tuple[str, dict[str, str]]:
    """Register, log in, read your writes; returns the path of the user and a second token."""
    data = factories.registration(faker)
    created = post(server, "/api/users", data)
    assert created.status == 201, created.body
    path = f"/api/users/{json.loads(created.body)['id']}"
    auth = login(server, data["email"], data["password"])
    on_every_worker(server, "/api/auth/me", auth, 200, by_pid)

    stale = []
    for i in range(ROUNDS):
        initials = f"R{i}"
        body = json.dumps({"initials": initials}).encode()
        patched = server.request("PATCH", path, body, {**auth, "Content-Type": "application/json"})
        assert patched.status == 200, patched.body
        for _ in range(2):
            read = server.request("GET", path, headers=auth)
            if read.status != 200 or json.loads(read.body)["initials"] != initials:
                stale.append((i, read.status, read.body[:80]))
    assert stale == [], f"{len(stale)} stale reads of {2 * ROUNDS}: {stale[:5]}"

    kept = login(server, data["email"], data["password"])  # a second session, for the restart
    assert server.request("POST", "/api/auth/logout", headers=auth).status == 204
    on_every_worker(server, "/api/auth/me", auth, 401, by_pid)  # from the very next request on
    return path, kept


def test_gunicorn_with_nothing_configured(installed, tmp_path, faker):
    folder = tmp_path / "served-here"
    folder.mkdir()
    argv = gunicorn(installed)
    server = start("gunicorn", clean_env(), tmp_path, argv, cwd=folder)
    try:
        path, kept = exercise(server, faker, by_pid=True)
    finally:
        stop(server)
    me = served_by(server, "/api/auth/me")
    assert len(me) == WORKERS, f"not every worker answered: {me}"
    assert all(401 in statuses and 200 in statuses for statuses in me.values()), me
    assert (folder / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600

    again = start("gunicorn-again", clean_env(), tmp_path, argv, cwd=folder)
    try:  # the same key, database and session state after a restart
        assert again.request("GET", "/api/auth/me", headers=kept).status == 200
        assert again.request("GET", path, headers=kept).status == 200
    finally:
        stop(again)


def test_user_service_run_with_nothing_configured(installed, tmp_path, faker):
    folder = tmp_path / "run-here"
    folder.mkdir()
    argv = user_service_run(installed)
    server = start("run", clean_env(), tmp_path, argv, cwd=folder)
    try:
        _, kept = exercise(server, faker, by_pid=False)
    finally:
        stop(server)
    again = start("run-again", clean_env(), tmp_path, argv, cwd=folder)
    try:
        assert again.request("GET", "/api/auth/me", headers=kept).status == 200
    finally:
        stop(again)
