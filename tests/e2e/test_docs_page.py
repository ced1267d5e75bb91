"""The API docs page as a browser shows it, with no internet: headless Chromium renders
/api/docs, every host but the loopback unresolvable, and the operations must appear in the page.
Swagger UI's files come from the service itself (app.http.docs_ui), so nothing else is needed.

Chromium is Debian's `chromium` package (.ci/run installs it); without it the test fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.e2e.conftest import start, stop
from tests.settings import TEST_ENV

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
OPERATIONS = ("/api/users", "/api/auth/login", "/api/auth/me", "/api/subscriptions")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(f"no headless browser ({', '.join(BROWSERS)}): apt-get install chromium")


@pytest.mark.slow  # a server and a headless browser: about 9 s
def test_the_docs_page_shows_the_operations_without_internet(tmp_path):
    env = {**os.environ, **TEST_ENV, "INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = start("docs", env, tmp_path)
    try:
        rendered = subprocess.run(
            [
                browser(),
                "--headless",
                "--no-sandbox",  # it runs as root in CI containers
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no internet
                "--virtual-time-budget=20000",  # lets the page's scripts run and fetch the spec
                "--dump-dom",
                f"http://127.0.0.1:{server.port}/api/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop(server)
    dom = rendered.stdout
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    shown = set(re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom))
    assert set(OPERATIONS) <= shown, f"operations shown: {sorted(shown)}\n{dom[:2000]}"
    assert "User service" in dom
