"""bench/login.py runs on both configurations and prints a row for each (two logins, cheap argon2
so it is quick). Needs Redis and PostgreSQL, and fails, never skips, without them."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.bench import ROOT, bench_command

pytestmark = pytest.mark.slow
CHEAP = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "1"}


def test_both_configurations_log_in_and_are_measured(tmp_path):
    argv = bench_command("login.py", "--logins", "2", "--json", str(tmp_path / "r.json"))
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **CHEAP}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines() if line.startswith(("embedded", "postgres"))]
    assert rows == ["embedded", "postgres"], done.stdout
    assert (tmp_path / "r.json").read_text().count("login_p50_ms") == 2
