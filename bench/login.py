"""Benchmark: what a login costs beyond its one argon2 verification, in one run.

A login must verify the password (argon2id, slow on purpose); everything else it does (the
throttle, the user's read, the session's write and its UserState entry, the tokens) is the
service's own cost. For each configuration this starts the service under gunicorn (2 sync
workers, access log off), registers a user, then sends `--logins` logins one after another
over HTTP, each followed, in this process with the server idle, by one argon2 verification of
a hash made with the same parameters: the baseline. It prints login p50 / p90 / max, the verification's
p50, and their difference and ratio.

    embedded   the embedded default: a SQLite file and the host's local store
    postgres   PostgreSQL (a schema of its own) with Redis (a key prefix of its own)

The argon2 parameters are the service's: argon2-cffi's defaults (RFC 9106's low-memory
profile) unless ARGON2_TIME_COST, ARGON2_MEMORY_COST or ARGON2_PARALLELISM are set in the
environment, which both the service and the baseline then use.

    .venv/bin/python bench/login.py [--logins N] [--only embedded|postgres] [--json PATH]

Redis is --redis-url and PostgreSQL --postgres-url, as for bench/http_read.py, whose helpers
this uses; everything it creates is removed at the end. Exit 1 when a login fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import http_read  # bench/, this script's directory, is first on sys.path
from http_read import ScenarioFailed, http, progress

from adapters.security import Argon2PasswordHasher

EMAIL, PASSWORD = "login-bench@example.com", "Passw0rd!x"
WARM_LOGINS = 3
CONFIGURATIONS = ("embedded", "postgres")


def argon2_settings() -> dict[str, int | None]:
    """The service's parameters, read from the same environment variables."""
    return {
        name: int(os.environ[variable]) if variable in os.environ else None
        for name, variable in (
            ("time_cost", "ARGON2_TIME_COST"),
            ("memory_cost", "ARGON2_MEMORY_COST"),
            ("parallelism", "ARGON2_PARALLELISM"),
        )
    }


def configuration(
    name: str, args: argparse.Namespace, workdir: Path
) -> AbstractContextManager[dict[str, str]]:
    return http_read.deployment(
        name,
        workdir,
        embedded=name == "embedded",
        redis_url=args.redis_url,
        postgres_url=args.postgres_url,
        cheap_argon2=False,  # the cost is what is measured here
    )


def post(url: str, payload: dict[str, str]) -> tuple[int, bytes]:
    status, _, body = http(url, "POST", {"Content-Type": "application/json"}, json.dumps(payload).encode())
    return status, body


def logins(base: str, count: int) -> tuple[list[float], list[float]]:
    """Registers the user, then `count` timed logins (ms) after a few untimed ones, each sending
    the device token of the first as a returning client does, and after each, while the server
    is idle, one timed argon2 verification in this process with the service's parameters (the
    two alternate, so both meet the same machine)."""
    status, body = post(f"{base}/api/users", {"email": EMAIL, "initials": "LB", "password": PASSWORD})
    if status not in (201, 202):
        raise ScenarioFailed(f"POST /api/users answered {status}: {body[:300]!r}")
    hasher = Argon2PasswordHasher(**argon2_settings())
    stored = hasher.hash(PASSWORD)
    credentials = {"email": EMAIL, "password": PASSWORD}
    login, verify = [], []
    for attempt in range(WARM_LOGINS + count):
        started = time.perf_counter()
        status, body = post(f"{base}/api/auth/login", credentials)
        logged_in = time.perf_counter()
        if status != 200:
            raise ScenarioFailed(f"login {attempt + 1} answered {status}: {body[:300]!r}")
        credentials["device_token"] = json.loads(body)["device_token"]
        if not hasher.verify(stored, PASSWORD):
            raise ScenarioFailed("argon2 did not verify its own hash")
        verified = time.perf_counter()
        if attempt >= WARM_LOGINS:
            login.append((logged_in - started) * 1000)
            verify.append((verified - logged_in) * 1000)
    return login, verify


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    with configuration(name, args, workdir) as env, http_read.service(name, env, workdir) as base:
        progress(f"{name}: {args.logins} logins, each followed by an argon2 verification here")
        login, verify = logins(base, args.logins)
    login_p50, verify_p50 = statistics.median(login), statistics.median(verify)
    return {
        "login_p50_ms": login_p50,
        "login_p90_ms": percentile(login, 0.9),
        "login_max_ms": max(login),
        "argon2_p50_ms": verify_p50,
        "beyond_argon2_p50_ms": login_p50 - verify_p50,
        "login_to_argon2": login_p50 / verify_p50,
    }


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    settings = ", ".join(f"{k}={v if v is not None else 'default'}" for k, v in argon2_settings().items())
    print(
        f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{n:.2f}' for n in os.getloadavg())}; "
        f"{args.logins} sequential logins per configuration; argon2 {settings}"
    )
    print()
    header = f"{'configuration':<14}{'login p50':>10}{'p90':>8}{'max':>8}"
    print(header + f"{'argon2 p50':>12}{'beyond':>9}{'ratio':>7}")
    for name, r in results.items():
        print(
            f"{name:<14}{r['login_p50_ms']:>10.2f}{r['login_p90_ms']:>8.2f}{r['login_max_ms']:>8.2f}"
            f"{r['argon2_p50_ms']:>12.2f}{r['beyond_argon2_p50_ms']:>9.2f}{r['login_to_argon2']:>7.2f}"
        )
    print("(ms; beyond = login p50 - argon2 p50, ratio = login p50 / argon2 p50)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=50, help="timed logins per configuration (default 50)")
    parser.add_argument("--only", choices=CONFIGURATIONS, help="one configuration only")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--redis-url", default=http_read.DEFAULT_REDIS_URL)
    parser.add_argument("--postgres-url", default=http_read.DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    if args.logins < 1:
        parser.error("--logins must be >= 1")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-login-") as workdir:
        for name in (args.only,) if args.only else CONFIGURATIONS:
            try:
                results[name] = measure(name, args, Path(workdir))
            except http_read.SETUP_ERRORS as error:
                print(f"{name}: FAILED: {error}", file=sys.stderr)
                return 1
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps({"argon2": argon2_settings(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
