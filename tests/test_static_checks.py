"""Static checks that run with the tests: the layering contracts of setup.cfg (import-linter:
app > adapters > application > ports > domain, TYPE_CHECKING imports included; no framework or
infrastructure library below adapters), mypy with setup.cfg's settings (strict for domain, ports
and application), ruff's lint rules from pyproject.toml, and the size rule: a module over 200
lines says why in its first line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "setup.cfg")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


TYPE_CHECKED = ("app", "adapters", "application", "domain", "ports", "wsgi.py")


def test_mypy_finds_nothing():
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run(
        [str(mypy), "--config-file", str(ROOT / "setup.cfg"), *TYPE_CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout, result.stdout + result.stderr


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


PACKAGES = ("app", "adapters", "application", "domain", "ports")
MOST_LINES = 200


def test_a_module_over_200_lines_says_why_at_its_top():
    unexplained = [
        f"{path.relative_to(ROOT)}: {len(lines)} lines"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if len(lines := path.read_text().splitlines()) > MOST_LINES
        and not lines[0].startswith("# Over 200 lines: ")
    ]
    assert unexplained == [], "start each with '# Over 200 lines: <why>'"
