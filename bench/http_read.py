"""Benchmark: `GET /api/users/{id}` over HTTP, the service against a bare app and Flask peers, in one run.

Every server runs under gunicorn with 2 sync workers on a free loopback port, access log off
(the service with its gunicorn.conf.py but not its access log, ~20 µs a request the bare app
does not spend); wrk loads it on loopback (`wrk -t2 -cC -dS --latency`, after a 1 s warm-up).
Scenarios:

    bare           bench/bare_app.py: a constant body of the same size, with the same headers
    hit            the service on a SQLite file, the Redis read cache (CACHE_URL=redis://…), warm
    hit@<scheme>   hit again, alone, with CACHE_URL=each --cache-url (and --sentinel's group), named
                   after its scheme (hit@redis+sentinel; hit@redis-1, hit@redis-2 when two share one)
    304            the same server, every request with If-None-Match: <the user's ETag>
    me             the same server, GET /api/auth/me (the session checked against UserState only)
    local-hit      hit, 304 and me again with the embedded default: the read cache, session state
    local-304      and login throttle in the host's shared SQLite file
    local-me       (CACHE_URL=local:///…/cache.db, APP_ENV=development, the signing key generated
                   into INSTANCE_PATH)
    sqlite         the service on a SQLite file, no cache (CACHE_URL=none)
    sqla-sqlite    bench/peer_apps.py's sqla_app (Flask + one SQLAlchemy primary-key read) on
                   that SQLite file, reading the same user row
    postgres       the service on PostgreSQL, no cache, in a schema of its own
    sqla-postgres  sqla_app on that schema, the same user row
    memoize        peer_apps.py's memoize_app (the same read in Flask-Caching's @cache.memoize on
                   its RedisCache) on that schema and Redis, under a key prefix of its own

Each peer starts once its service scenario is measured and its server stopped (two servers
would share the CPUs), on the database that server migrated and seeded; wrk sends it the same
requests, its Authorization header ignored like the bare app's. Flask-Caching comes with the `test`
extra.

It prints req/s, p50 and p99 latency per scenario with their ratios to `bare` and, for each
local-X, to the Redis scenario X (local-hit / hit, ...), for each hit@<scheme> to hit, and checks
the targets: hit ≥ 0.80 × bare req/s, 304 ≥ 0.85 × bare req/s, hit p99 ≤ 1.5 × bare p99,
local-hit ≥ 0.90 × hit req/s, local-304 ≥ 0.90 × 304 req/s. The peers and hit@<scheme> have no
target: they are context.

    .venv/bin/python bench/http_read.py [--duration S] [--connections C] [--strict] [--smoke]
                                        [--json PATH] [--users N] [--cache-url URL ...] [--sentinel]

--cache-url URL (repeatable) measures hit on another Redis topology too, as hit@<scheme>: any
Redis CACHE_URL the service takes (redis://, rediss://, unix://, redis+sentinel://h:p[,h:p]/
service/db, rediss+sentinel://, redis+cluster://h:p[,h:p], rediss+cluster://). Its server is hit's
with that CACHE_URL, on a SQLite file of its own, started once hit's is stopped: the same seeding
(and warming with --users), the same wrk load, its cached reads counted the same way. The bench's
own clients of that Redis (the key prefix's clean-up) are the service's (adapters/redis/stores.py's
`client`): of the master the sentinels name, of every master of a Cluster. --sentinel starts a
throwaway Sentinel group for the run (tests/support/sentinel.py: a master, a replica and 3
sentinels on free loopback ports, in the temporary directory), --cluster a throwaway Cluster
(tests/support/cluster.py: three masters); each needs redis-server (redis-cli too for --cluster;
exit 2 without) and pytest, of the `test` extra; each is stopped at the run's end, on Ctrl-C and
SIGTERM too, and adds its URL as a --cache-url: hit@redis+sentinel (database 0), hit@redis+cluster.

--users N (growth): before each service scenario's server starts, N users are inserted straight
into its freshly migrated database (SQLAlchemy Core executemany of adapters/sqlalchemy/tables.py's
`users`, 10,000 rows a transaction, the rows the service writes at registration; no
confirmation tokens, one precomputed password hash for all), the same N ids in every database.
The first is the reader, bench@example.com with the roles admin and user (only an admin may
read another account), which logs in through the API; the others are u0000001@bench.io, … (as
long as the reader's email, so a body is as long as bare's). The read cache of hit, of each
hit@<scheme> and of local-hit (the server of 304 and me too) is then warmed with every user's
entry by id, as the service's first read of it would store it (bench/population.py's
Population.warm, on the master the sentinels name for a Sentinel URL),
so that every read of hit and 304 is a hit; the entries live 600 s (the user_by_id TTL) from
then, within which those scenarios must be done (each takes --duration and the warm-up). Every
`GET /api/users/{id}` of bare, hit (and hit@<scheme>), 304, the uncached scenarios and the peers
then asks for a random one of the N per request (wrk -s with population.py's RANDOM_IDS_LUA,
reading the ids from a file; 304 with that user's ETag), and wrk reports how many distinct ids it
asked for. memoize's cache is not warmed: its first read of an id is a miss. `me` stays the
reader's. Without --users every scenario reads the one registered user, as before.

hit, 304, each hit@<scheme>, local-hit and local-304 also report the service's cache hits and
misses of users by id during the measured run (cache_hits_total and cache_misses_total with
policy="user_by_id" at its /metrics, before and after, with METRICS_TOKEN set for every service
scenario); the table shows the misses with --users.

--json PATH also writes the results as JSON: {"context": {cpus, load_average, python, wrk,
workers, wrk_threads, connections, duration_s, warmup, users, cache_urls}, "scenarios": [{name,
rps, p50_ms, p99_ms, rps_to_bare, p99_to_bare, requests, distinct_ids, cache_hits, cache_misses,
error}, ...]}, in the table's order; cache_urls maps each hit@<scheme> to its CACHE_URL (its
passwords ***; {} without --cache-url and --sentinel); a number is null when the scenario has no
measurement (or, for a ratio, bare has none; users and distinct_ids without --users; cache_hits
and cache_misses but for hit, 304, hit@<scheme>, local-hit and local-304), error is null or its
text.

A scenario fails (exit 1) when its pre-check with urllib answers another status than expected
(200, or 304 for `304` and `local-304`), a peer's body is not the service's representation of
the user, or wrk sees socket errors or non-2xx/3xx responses.
Missed targets are printed; only --strict makes them exit 1. --smoke (1 s, 4 connections, no
warm-up) checks that every scenario works and judges no target. wrk is needed (`apt-get install -y wrk`;
exit 2 without it).

The Redis scenarios and the uncached ones run as in production (APP_ENV=production, with
SECRET_KEY, DATABASE_URL, CACHE_URL and MAIL_BACKEND=log, so no SMTP_HOST). Redis is
--redis-url (default BENCH_REDIS_URL, else redis://127.0.0.1:6379/12); the service's keys, and
memoize's, are under a `bench:<random>:` of their own and deleted at the end, as hit@<scheme>'s
on its --cache-url. PostgreSQL is
--postgres-url (default TEST_POSTGRES_URL, else postgresql+psycopg://root@127.0.0.1:5432/test);
the schema `bench_<random>` is created and dropped again. SQLite files, the local store and every
server's INSTANCE_PATH live in a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import FrameType
from typing import Any

import bare_app  # bench/, this script's directory, is first on sys.path
import redis
from population import NotWarmed, Population
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from adapters.caching.users import BY_ID
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.connection import (
    CLUSTER_SCHEMES,
    SENTINEL_SCHEMES,
    SERVER_SCHEMES,
    cluster_nodes,
    is_cluster,
    is_sentinel,
    sentinel_group,
)
from adapters.redis.stores import client as redis_client
from adapters.security import Argon2PasswordHasher

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent  # the virtualenv's bin: gunicorn and user-service
DEFAULT_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DEFAULT_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
PASSWORD = "Passw0rd!x"
WORKERS = 2
WRK_THREADS = 2
WARMUP_SECONDS = 1
WARM_GETS = 5
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# Every service scenario: no SMTP_HOST needed, even in production; /metrics served, to this token.
SERVICE_ENV = {"MAIL_BACKEND": "log", "METRICS_TOKEN": secrets.token_urlsafe(24)}
METRICS_AUTH = {"Authorization": f"Bearer {SERVICE_ENV['METRICS_TOKEN']}"}
# Cheap hashing for the seeding logins, but where the argon2 cost is what is measured (bench/login.py).
CHEAP_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "1"}
PRODUCTION_ENV = {"APP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32)}
# The embedded default is refused in production (CACHE_URL is required there); without
# SECRET_KEY its workers share a key generated into INSTANCE_PATH.
EMBEDDED_ENV = {"APP_ENV": "development"}
CACHED = ("hit", "304", "me")  # measured once per cache: with Redis, and local-* with the local store
LOCAL = "local-"
LOCAL_CACHED = tuple(f"{LOCAL}{name}" for name in CACHED)
HIT_AT = "hit@"  # hit@<scheme>: hit again on a --cache-url, after hit in the table
REDIS_SCHEMES = (*SERVER_SCHEMES, *SENTINEL_SCHEMES, *CLUSTER_SCHEMES)  # the CACHE_URLs --cache-url takes
SENTINEL_DB = 0  # --sentinel's group is the run's own: any database will do
SQLITE, POSTGRES = ("sqlite", "sqla-sqlite"), ("postgres", "sqla-postgres", "memoize")  # service, its peers
SCENARIOS = ("bare", *(f"{p}{name}" for name in CACHED for p in ("", LOCAL)), *SQLITE, *POSTGRES)
# Sent to bare_app and the peers, which ignore it, in place of the service's access token: a
# header as long, so the requests are as long.
IGNORED_AUTH = {"Authorization": f"Bearer {'x' * 290}"}


@dataclass(frozen=True)
class Target:
    """`scenario`'s `metric` compared with `baseline`'s: at least (req/s) or at most (p99) `factor` ×."""

    scenario: str
    metric: str  # "rps" or "p99"
    factor: float
    baseline: str = "bare"

    def describe(self) -> str:
        if self.metric == "rps":
            return f"{self.scenario} req/s >= {self.factor:.2f} x {self.baseline}"
        return f"{self.scenario} p99 <= {self.factor:.2f} x {self.baseline} p99"


TARGETS = (
    Target("hit", "rps", 0.80),
    Target("304", "rps", 0.85),
    Target("hit", "p99", 1.5),
    Target(f"{LOCAL}hit", "rps", 0.90, baseline="hit"),
    Target(f"{LOCAL}304", "rps", 0.90, baseline="304"),
)


class ScenarioFailed(Exception):
    """A scenario could not be set up or measured; the message says why."""


@dataclass(frozen=True)
class Load:
    duration: int
    connections: int
    warmup: bool


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    distinct_ids: int | None = None  # with --users: how many of them wrk asked for

    def problems(self) -> list[str]:
        found = []
        if self.requests == 0:
            found.append("no request completed")
        if self.socket_errors:
            found.append(f"{self.socket_errors} socket errors")
        if self.non_2xx_3xx:
            found.append(f"{self.non_2xx_3xx} non-2xx/3xx responses")
        return found


@dataclass(frozen=True)
class CacheReads:
    """The service's reads of users by id through its read cache (cache_hits_total and
    cache_misses_total with policy="user_by_id" at /metrics, summed over its workers)."""

    hits: int
    misses: int

    def __sub__(self, earlier: CacheReads) -> CacheReads:
        return CacheReads(self.hits - earlier.hits, self.misses - earlier.misses)


@dataclass(frozen=True)
class Outcome:
    scenario: str
    result: WrkResult | None
    error: str | None = None
    reads: CacheReads | None = None  # hit and 304: the measured run's


# --- progress, processes and HTTP ------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[http_read] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def http(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, Message, bytes]:
    """Status, headers and body; 3xx, 4xx and 5xx are answers here, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def cache_reads(base: str) -> CacheReads:
    """The service's cached reads by id so far (a counter not yet incremented is absent: 0)."""
    status, _, body = http(f"{base}/metrics", headers=METRICS_AUTH)
    if status != 200:
        raise ScenarioFailed(f"GET /metrics answered {status}: {body[:200]!r}")
    found = {"cache_hits_total": 0.0, "cache_misses_total": 0.0}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in found and sample.labels.get("policy") == BY_ID.name:
                found[sample.name] += sample.value
    return CacheReads(int(found["cache_hits_total"]), int(found["cache_misses_total"]))


def expect_status(url: str, expected: int, headers: dict[str, str] | None = None) -> bytes:
    status, _, body = http(url, headers=headers)
    if status != expected:
        raise ScenarioFailed(f"pre-check GET {url} answered {status}, expected {expected}: {body[:200]!r}")
    return body


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_live(name: str, base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScenarioFailed(f"{name} server exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            if http(f"{base}/health/live")[0] == 200:
                return
        time.sleep(0.1)
    raise ScenarioFailed(f"{name} server not live after {STARTUP_TIMEOUT:.0f} s:\n{tail(log)}")


@contextlib.contextmanager
def gunicorn(
    name: str, app: str, cwd: Path, env: dict[str, str], logs: Path, config: Path | None = None
) -> Iterator[str]:
    """A gunicorn server for `app` on a free loopback port, live; yields its base URL. Without
    `config`, gunicorn reads `cwd`/gunicorn.conf.py if there is one."""
    port = free_port()
    log = logs / f"{name}.stderr"
    argv = [str(BIN / "gunicorn"), "-w", str(WORKERS), "-k", "sync", "-b", f"127.0.0.1:{port}"]
    argv += [*(["-c", str(config)] if config else []), "--graceful-timeout", "10", app]
    progress(f"starting {name} server on :{port}")
    with log.open("wb") as stderr:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_live(name, base, process, log)
        yield base
    finally:
        progress(f"stopping {name} server")
        stop(process)


# --- wrk --------------------------------------------------------------------------------------

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_latency(output: str, percentile: int) -> float:
    match = re.search(rf"^\s*{percentile}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    if match is None:
        raise ScenarioFailed(f"no {percentile}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if rps is None or requests is None:
        raise ScenarioFailed(f"unexpected wrk output:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    distinct = re.search(r"^Distinct ids: (\d+) of \d+", output, re.MULTILINE)  # RANDOM_IDS_LUA's
    return WrkResult(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_ms=parse_latency(output, 50),
        p99_ms=parse_latency(output, 99),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        distinct_ids=int(distinct.group(1)) if distinct else None,
    )


def wrk_argv(
    url: str,
    seconds: int,
    connections: int,
    headers: dict[str, str],
    script: tuple[str, ...] = (),
    threads: int = WRK_THREADS,
) -> list[str]:
    """wrk's command line. `script`: wrk's Lua script and its arguments (Population.script), or
    nothing: `url` each time."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, "-s", script[0], url, "--", *script[1:]] if script else [*argv, url]


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str], script: tuple[str, ...] = ()
) -> WrkResult:
    argv = wrk_argv(url, seconds, connections, headers, script)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise ScenarioFailed(f"wrk exited with {done.returncode}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    first = (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else "wrk ?"
    return first.split(" Copyright")[0].removeprefix("wrk ").strip()


def measure(
    scenario: str,
    url: str,
    load: Load,
    expected: int,
    headers: dict[str, str] | None = None,
    script: tuple[str, ...] = (),
    counted: Callable[[], CacheReads] | None = None,
) -> Outcome:
    """Pre-check the status of `url` with urllib, warm up, then the measured wrk run; with
    `script` (wrk's Lua script and its arguments), wrk's requests are the script's; with
    `counted` (the service's cached reads so far), the measured run's cached reads too."""
    headers = headers or {}
    reads = None
    try:
        expect_status(url, expected, headers)
        if load.warmup:
            progress(f"{scenario}: warm-up {WARMUP_SECONDS} s")
            wrk(url, WARMUP_SECONDS, load.connections, headers, script)
        shown = f"{url} (random ids)" if script else url
        progress(f"{scenario}: wrk -t{WRK_THREADS} -c{load.connections} -d{load.duration}s {shown}")
        before = counted() if counted else None
        result = wrk(url, load.duration, load.connections, headers, script)
        if counted and before is not None:
            reads = counted() - before
    except (ScenarioFailed, OSError, subprocess.SubprocessError) as error:
        return Outcome(scenario, None, str(error) or repr(error))
    problems = result.problems()
    return Outcome(scenario, result, "; ".join(problems) if problems else None, reads)


# --- the service: environment, schema, data ----------------------------------------------------


def base_env() -> dict[str, str]:
    """This process's environment without anything that would change gunicorn's settings."""
    return {name: value for name, value in os.environ.items() if name != "GUNICORN_CMD_ARGS"}


def service_env(
    instance: Path,
    database_url: str,
    cache_url: str,
    *,
    profile: dict[str, str] = PRODUCTION_ENV,
    cache_prefix: str | None = None,
    cheap_argon2: bool = True,
) -> dict[str, str]:
    """Everything the service reads that the defaults of `profile`'s APP_ENV would not make
    right for a benchmark; `instance` is its INSTANCE_PATH."""
    argon2 = CHEAP_ARGON2 if cheap_argon2 else {}
    env = {**base_env(), **SERVICE_ENV, **argon2, **profile, "INSTANCE_PATH": str(instance)}
    env.update(DATABASE_URL=database_url, CACHE_URL=cache_url)
    if cache_prefix is not None:
        env["CACHE_PREFIX"] = cache_prefix
    return env


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "user-service"), "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise ScenarioFailed(f"user-service migrate exited with {done.returncode}:\n{done.stderr[-2000:]}")


def quiet_config(workdir: Path) -> Path:
    """The service's gunicorn.conf.py without its access log (`accesslog` can be None only in a
    file: gunicorn's command line wants a writable path)."""
    path, served = workdir / "gunicorn.conf.py", str(ROOT / "gunicorn.conf.py")
    path.write_text(
        f"with open({served!r}) as _file:\n    exec(compile(_file.read(), {served!r}, 'exec'))\n"
        "accesslog = None\n"
    )
    return path


@contextlib.contextmanager
def service(
    name: str, env: dict[str, str], logs: Path, population: Population | None = None
) -> Iterator[str]:
    """The service on `env`'s database, migrated and, with `population`, seeded with its users
    and its read cache (if it has one) warmed with them."""
    progress(f"{name}: migrating {make_url(env['DATABASE_URL']).render_as_string(hide_password=True)}")
    migrate(env)
    if population is not None:
        population.fill(name, env["DATABASE_URL"])
        population.warm(name, env)
    with gunicorn(name, "wsgi:app", ROOT, env, logs, quiet_config(logs)) as base:
        yield base


def seed(base: str, population: Population | None = None) -> tuple[str, str, dict[str, str]]:
    """Registers the user the scenarios read (with `population`, its reader, already in the
    database) and logs it in, reads it a few times (warming the cache) and returns its URL,
    ETag and Authorization header."""
    if population is None:
        url = f"{base}/api/users/{register(base)}"
    else:
        url = f"{base}/api/users/{population.reader}"
    credentials = json.dumps({"email": bare_app.EMAIL, "password": PASSWORD}).encode()
    status, _, body = http(
        f"{base}/api/auth/login", "POST", {"Content-Type": "application/json"}, credentials
    )
    if status != 200:
        raise ScenarioFailed(f"POST /api/auth/login answered {status}: {body[:300]!r}")
    auth = {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
    for _ in range(WARM_GETS):
        status, headers, body = http(url, headers=auth)
        if status != 200:
            raise ScenarioFailed(f"warm-up GET {url} answered {status}: {body[:300]!r}")
    etag = headers["ETag"]
    if population is not None:  # the reader, an admin, is longer by its role: check another
        body = expect_status(f"{base}/api/users/{population.sample}", 200, auth)
    if len(body) != len(bare_app.BODY):
        progress(f"warning: the service's body has {len(body)} bytes, the bare app's {len(bare_app.BODY)}")
    return url, etag, auth


def password_hash() -> str:
    """One hash of PASSWORD for every seeded user, made with the service's hasher at the cost it
    runs with here (CHEAP_ARGON2), so the reader's login needs no rehash."""
    cost = {key: int(value) for key, value in CHEAP_ARGON2.items()}
    hasher = Argon2PasswordHasher(
        cost["ARGON2_TIME_COST"], cost["ARGON2_MEMORY_COST"], cost["ARGON2_PARALLELISM"]
    )
    return hasher.hash(PASSWORD)


def register(base: str) -> str:
    """The id of the user registered through the API with bench@example.com."""
    payload = json.dumps({"email": bare_app.EMAIL, "initials": "AB", "password": PASSWORD}).encode()
    status, _, body = http(
        f"{base}/api/users", "POST", {"Content-Type": "application/json"}, payload
    )  # a 201 body is the user's representation
    if status != 201:
        raise ScenarioFailed(f"POST /api/users answered {status}: {body[:300]!r}")
    return str(json.loads(body)["id"])


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A random key prefix on the Redis at `url` (a Sentinel URL's master, a Cluster's masters);
    its keys are deleted (SCAN + DEL, on each master) afterwards."""
    client = redis_client(url, socket_timeout=5)  # the service's: a server's, a group's, a Cluster's
    try:
        servers = masters(client)
        for server in servers:
            server.ping()
    except (redis.RedisError, redis.exceptions.RedisClusterException) as error:
        client.close()
        raise ScenarioFailed(f"Redis not reachable at {url}: {error}")
    prefix = f"bench:{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        deleted = 0
        for server in servers:
            for batch in batched(server.scan_iter(match=f"{prefix}*", count=1000), 1000):
                pipe = server.pipeline(transaction=False)
                for key in batch:  # one DEL a key: a Cluster node refuses keys of several slots
                    pipe.delete(key)
                deleted += sum(pipe.execute())
        progress(f"deleted {deleted} Redis keys under {prefix}")
        client.close()


def masters(client: redis.Redis | ClusterClient) -> list[redis.Redis]:
    """The server, or a Cluster's masters, each a client of its own."""
    if not isinstance(client, ClusterClient):
        return [client]
    cluster = client.client
    return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]


def batched(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A fresh schema `bench_<random>` on the server; yields a URL that selects it (search_path)
    and drops it (CASCADE) afterwards."""
    url = make_url(server_url).update_query_dict({"connect_timeout": "5"})
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as error:
        admin.dispose()
        raise ScenarioFailed(f"PostgreSQL not usable at {url.render_as_string(hide_password=True)}: {error}")
    selected = url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield selected.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        progress(f"dropped schema {schema}")


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    load: Load
    redis_url: str
    postgres_url: str
    workdir: Path
    population: Population | None = None  # --users
    cache_urls: tuple[tuple[str, str], ...] = ()  # --cache-url and --sentinel: (hit@<scheme>, URL)

    def script(self, etag: bool = False) -> tuple[str, ...]:
        """wrk's script for reading random users with --users; without, nothing (one URL)."""
        return self.population.script(etag) if self.population else ()


def bare(settings: Settings) -> Iterator[Outcome]:
    # With --users, wrk builds the same random paths as for the service (bare_app ignores the id).
    with gunicorn("bare", "bare_app:app", BENCH, base_env(), settings.workdir) as base:
        url = f"{base}/api/users/{bare_app.USER_ID}"
        yield measure("bare", url, settings.load, 200, IGNORED_AUTH, settings.script())


@contextlib.contextmanager
def redis_cache(settings: Settings, name: str = "hit", url: str | None = None) -> Iterator[dict[str, str]]:
    """The service's environment with the Redis read cache at `url` (default --redis-url), under a
    key prefix of its own; its SQLite file and INSTANCE_PATH named after the scenario `name`."""
    url = url or settings.redis_url
    files = re.sub(r"[^\w-]", "_", name)  # hit@redis+sentinel: hit_redis_sentinel.db
    with redis_prefix(url) as prefix:
        workdir = settings.workdir
        yield service_env(instance(workdir, files), sqlite_url(workdir, files), url, cache_prefix=prefix)


def local_cache(settings: Settings) -> AbstractContextManager[dict[str, str]]:
    """The service's environment with the embedded default's local store (a file of its own)."""
    return deployment(f"{LOCAL}hit", settings.workdir, embedded=True)


@contextlib.contextmanager
def deployment(
    name: str,
    workdir: Path,
    *,
    embedded: bool,
    redis_url: str = DEFAULT_REDIS_URL,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    cheap_argon2: bool = True,
) -> Iterator[dict[str, str]]:
    """The service's environment as deployed: the embedded default (a SQLite file and the local
    store, files named after `name`), or PostgreSQL (a schema of its own) with Redis (a key
    prefix of its own), both removed afterwards."""
    home = instance(workdir, name)
    if embedded:
        store = f"local://{workdir / name / 'cache.db'}"  # local:///tmp/...: an absolute path
        yield service_env(
            home, sqlite_url(workdir, name), store, profile=EMBEDDED_ENV, cheap_argon2=cheap_argon2
        )
        return
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_schema(postgres_url))
        prefix = stack.enter_context(redis_prefix(redis_url))
        yield service_env(home, database, redis_url, cache_prefix=prefix, cheap_argon2=cheap_argon2)


def cached(
    names: tuple[str, ...],
    cache: Callable[[Settings], AbstractContextManager[dict[str, str]]],
    settings: Settings,
) -> Iterator[Outcome]:
    """`hit`, `304` and `me` under `names` (CACHED, LOCAL_CACHED) on a server with `cache`; with
    one name (hit@<scheme>), `hit` alone."""
    hit, *others = names
    population = settings.population
    with cache(settings) as env, service(hit, env, settings.workdir, population) as base:
        url, etag, auth = seed(base, population)
        counted = functools.partial(cache_reads, base)
        yield measure(hit, url, settings.load, 200, auth, settings.script(), counted)
        if not others:
            return
        not_modified, me = others
        not_modified_headers = {**auth, "If-None-Match": etag}
        script = settings.script(etag=True)
        yield measure(not_modified, url, settings.load, 304, not_modified_headers, script, counted)
        yield measure(me, f"{base}/api/auth/me", settings.load, 200, auth)


@dataclass(frozen=True)
class SeededUser:
    """The user a service scenario registered (with --users, one of those seeded), for its peers
    to read from the same database."""

    path: str  # /api/users/<id>; with --users, Population.sample's
    representation: bytes  # the service's body


def uncached(name: str, env: dict[str, str], settings: Settings) -> Generator[Outcome, None, SeededUser]:
    """The service without a cache: seeds the user (or the users) and measures reading it (or
    them); returns the user for the peers once the server is stopped, so the peers that follow
    have the CPUs to themselves."""
    with service(name, env, settings.workdir, settings.population) as base:
        url, _, auth = seed(base, settings.population)
        path = f"/api/users/{settings.population.sample}" if settings.population else url.removeprefix(base)
        representation = expect_status(f"{base}{path}", 200, auth)
        yield measure(name, url, settings.load, 200, auth, settings.script())
    return SeededUser(path, representation)


def peer(name: str, app: str, env: dict[str, str], user: SeededUser, settings: Settings) -> Iterator[Outcome]:
    """bench/peer_apps.py's `app` reading `user`, which it must represent as the service does;
    with --users, wrk reads random users as from the service (the peers take the id from the path)."""
    with gunicorn(name, f"peer_apps:{app}", BENCH, env, settings.workdir) as base:
        url = f"{base}{user.path}"
        body = expect_status(url, 200, IGNORED_AUTH)
        # Byte for byte: the same JSON, as long, or the peer is not doing the service's work.
        if body != user.representation:
            raise ScenarioFailed(f"{name} serves {body!r}, the service {user.representation!r}")
        yield measure(name, url, settings.load, 200, IGNORED_AUTH, settings.script())


def peer_env(database_url: str, **cache: str) -> dict[str, str]:
    """A peer's environment: the service's database and, for memoize_app, its Redis settings."""
    return {**base_env(), "PEER_DATABASE_URL": database_url, **cache}


def uncached_sqlite(settings: Settings) -> Iterator[Outcome]:
    workdir, database_url = settings.workdir, sqlite_url(settings.workdir, "sqlite")
    env = service_env(instance(workdir, "sqlite"), database_url, "none")
    user = yield from uncached("sqlite", env, settings)
    yield from peer("sqla-sqlite", "sqla_app", peer_env(database_url), user, settings)


def uncached_postgres(settings: Settings) -> Iterator[Outcome]:
    with postgres_schema(settings.postgres_url) as database_url:
        env = service_env(instance(settings.workdir, "postgres"), database_url, "none")
        user = yield from uncached("postgres", env, settings)
        yield from peer("sqla-postgres", "sqla_app", peer_env(database_url), user, settings)
        with redis_prefix(settings.redis_url) as prefix:
            env = peer_env(database_url, PEER_REDIS_URL=settings.redis_url, PEER_CACHE_PREFIX=prefix)
            yield from peer("memoize", "memoize_app", env, user, settings)


def sqlite_url(workdir: Path, name: str) -> str:
    return f"sqlite:///{workdir / f'{name}.db'}"


def instance(workdir: Path, name: str) -> Path:
    return workdir / name / "instance"


GROUPS: tuple[tuple[tuple[str, ...], Callable[[Settings], Iterator[Outcome]]], ...] = (
    (("bare",), bare),
    (CACHED, functools.partial(cached, CACHED, redis_cache)),
    (LOCAL_CACHED, functools.partial(cached, LOCAL_CACHED, local_cache)),
    (SQLITE, uncached_sqlite),
    (POSTGRES, uncached_postgres),
)
SETUP_ERRORS = (
    ScenarioFailed,
    NotWarmed,
    OSError,
    subprocess.SubprocessError,
    redis.RedisError,
    SQLAlchemyError,
    sqlite3.Error,
)


def run_group(names: tuple[str, ...], group: Iterator[Outcome]) -> list[Outcome]:
    """The group's outcomes; when its setup fails, the scenarios it did not reach fail with it."""
    outcomes: list[Outcome] = []
    with contextlib.closing(group):
        try:
            outcomes.extend(group)
        except SETUP_ERRORS as error:
            reason = str(error) or repr(error)
            reached = {outcome.scenario for outcome in outcomes}
            outcomes += [Outcome(name, None, reason) for name in names if name not in reached]
    for outcome in outcomes:
        if outcome.error:
            progress(f"{outcome.scenario}: FAILED: {outcome.error}")
    return outcomes


def groups(settings: Settings) -> Iterator[tuple[tuple[str, ...], Iterator[Outcome]]]:
    """GROUPS, and after the Redis one, hit@<scheme>'s for each --cache-url, a server each."""
    for names, group in GROUPS:
        yield names, group(settings)
        if names == CACHED:
            for name, url in settings.cache_urls:
                cache = functools.partial(redis_cache, name=name, url=url)
                yield (name,), cached((name,), cache, settings)


def run_all(settings: Settings) -> list[Outcome]:
    return [outcome for names, group in groups(settings) for outcome in run_group(names, group)]


# --- report -----------------------------------------------------------------------------------


NAME_WIDTH = max(len(name) for name in SCENARIOS) + 1  # at least: hit@<scheme> may be longer


def quotient(value: float | None, baseline: float | None) -> float | None:
    return value / baseline if value is not None and baseline else None


def ratio(value: float | None, baseline: float | None) -> str:
    found = quotient(value, baseline)
    return f"{found:.2f}" if found is not None else "-"


def ratios(result: WrkResult, baseline: WrkResult | None) -> str:
    """req/s and p99 over `baseline`'s, in two columns."""
    rps, p99 = (baseline.rps, baseline.p99_ms) if baseline else (None, None)
    return f"{ratio(result.rps, rps):>12}{ratio(result.p99_ms, p99):>10}"


def redis_baseline(name: str) -> str | None:
    """The Redis scenario `name` is compared with: X for local-X, hit for hit@<scheme>."""
    if name.startswith(LOCAL):
        return name.removeprefix(LOCAL)
    return "hit" if name.startswith(HIT_AT) else None


def in_order(outcomes: list[Outcome]) -> list[Outcome]:
    """SCENARIOS' order, each hit@<scheme> after hit (in the order of the --cache-url options)."""
    return sorted(outcomes, key=lambda o: (SCENARIOS.index(o.scenario.partition("@")[0]), "@" in o.scenario))


def table(outcomes: list[Outcome], spread: bool = False) -> list[str]:
    """One row per scenario, each local-X under its Redis X and each hit@<scheme> under hit, with
    its ratios to bare and to X (hit); `spread` (--users): also the requests, the distinct ids wrk
    asked for and the cache misses."""
    by_name = {outcome.scenario: outcome.result for outcome in outcomes}
    base = by_name.get("bare")
    width = max(NAME_WIDTH, *(len(outcome.scenario) + 1 for outcome in outcomes))
    header = f"{'scenario':<{width}}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s/bare':>12}{'p99/bare':>10}"
    header += f"{'req/s/redis':>12}{'p99/redis':>10}"
    lines = [header + (f"{'requests':>10}{'ids':>10}{'misses':>8}" if spread else "")]
    for outcome in in_order(outcomes):
        result, name = outcome.result, outcome.scenario
        if result is None:
            lines.append(f"{name:<{width}}{'FAILED':>9}  {outcome.error.splitlines()[0]}")
            continue
        row = f"{name:<{width}}{result.rps:>9.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
        row += ratios(result, base)
        if (baseline := redis_baseline(name)) is not None:
            row += ratios(result, by_name.get(baseline))
        if spread:
            ids = "-" if result.distinct_ids is None else str(result.distinct_ids)
            misses = "-" if outcome.reads is None else str(outcome.reads.misses)
            row = f"{row:<{len(header)}}{result.requests:>10}{ids:>10}{misses:>8}"
        lines.append(row + (f"  FAILED: {outcome.error}" if outcome.error else ""))
    return lines


def judge(target: Target, outcomes: list[Outcome]) -> str:
    """PASS, MISS or n/a (a scenario it needs failed)."""
    by_name = {o.scenario: o.result for o in outcomes if o.error is None}
    result, base = by_name.get(target.scenario), by_name.get(target.baseline)
    if result is None or base is None:
        return "n/a"
    if target.metric == "rps":
        return "PASS" if result.rps >= target.factor * base.rps else "MISS"
    return "PASS" if result.p99_ms <= target.factor * base.p99_ms else "MISS"


def context(load: Load, users: int | None, cache_urls: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The machine and the load, taken once after the run for both the text and the JSON; with
    --cache-url or --sentinel, each hit@<scheme>'s CACHE_URL, its passwords hidden."""
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(n, 2) for n in os.getloadavg()],
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "workers": WORKERS,
        "wrk_threads": WRK_THREADS,
        "connections": load.connections,
        "duration_s": load.duration,
        "warmup": load.warmup,
        "users": users,
        "cache_urls": {name: hidden(url) for name, url in cache_urls},
    }


def hidden(url: str) -> str:
    """`url` with *** for its passwords (the server's and a Sentinel URL's sentinel_password)."""
    url = re.sub(r"^([^:/]+://[^:/@]*):[^/]*@", r"\1:***@", url)  # [user]:password@, up to the last @
    return re.sub(r"([?&]sentinel_password=)[^&]*", r"\1***", url)


def context_line(machine: dict[str, Any]) -> str:
    load_average = ", ".join(f"{n:.2f}" for n in machine["load_average"])
    return (
        f"machine: {machine['cpus']} CPUs, load average {load_average}; Python {machine['python']}; "
        f"wrk {machine['wrk']}; gunicorn -w {machine['workers']} -k sync; "
        f"wrk -t{machine['wrk_threads']} -c{machine['connections']} -d{machine['duration_s']}s"
        + ("" if machine["warmup"] else " (no warm-up)")
        + (f"; a random one of {machine['users']:,} users per read" if machine["users"] else "")
    )


def report(outcomes: list[Outcome], machine: dict[str, Any], smoke: bool) -> list[str]:
    """Prints the table and the targets; returns the targets missed."""
    print(context_line(machine))
    print()
    print("\n".join(table(outcomes, spread=bool(machine["users"]))))
    print(f"(req/s/redis, p99/redis: each {LOCAL}X against X, the same requests with the Redis cache)")
    for name, url in machine["cache_urls"].items():
        print(f"({name}: hit with CACHE_URL={url}; its req/s/redis, p99/redis against hit)")
    if machine["users"]:
        print(
            "(requests, ids: the measured run's requests and the distinct users they asked for; misses: "
            "the service's cache misses of users by id in that run, from its /metrics: hit, 304 and "
            "local-* read caches warmed with every user before their servers started, so 0; memoize's "
            "cache starts cold, at most `ids` misses)"
        )
    print()
    if smoke:
        print("targets: not judged in smoke mode")
        return []
    missed = []
    for target in TARGETS:
        verdict = judge(target, outcomes)
        print(f"target {target.describe():<32} {verdict}")
        if verdict == "MISS":
            missed.append(target.describe())
    return missed


def scenario_document(outcome: Outcome, base: WrkResult | None) -> dict[str, Any]:
    result = outcome.result
    if result is None:
        measured: dict[str, Any] = dict.fromkeys(
            ("rps", "p50_ms", "p99_ms", "rps_to_bare", "p99_to_bare", "requests", "distinct_ids")
        )
        measured |= dict.fromkeys(("cache_hits", "cache_misses"))
    else:
        measured = {
            "rps": result.rps,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "rps_to_bare": rounded(quotient(result.rps, base.rps if base else None)),
            "p99_to_bare": rounded(quotient(result.p99_ms, base.p99_ms if base else None)),
            "requests": result.requests,
            "distinct_ids": result.distinct_ids,
            "cache_hits": outcome.reads.hits if outcome.reads else None,
            "cache_misses": outcome.reads.misses if outcome.reads else None,
        }
    return {"name": outcome.scenario, **measured, "error": outcome.error}


def rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def write_json(path: Path, outcomes: list[Outcome], machine: dict[str, Any]) -> None:
    """The table as JSON (see the module's docstring), bare's ratios as in the table."""
    base = {outcome.scenario: outcome.result for outcome in outcomes}.get("bare")
    scenarios = [scenario_document(outcome, base) for outcome in in_order(outcomes)]
    path.write_text(json.dumps({"context": machine, "scenarios": scenarios}, indent=2) + "\n")
    progress(f"wrote {path}")


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--smoke", action="store_true", help="1 s, 4 connections, no warm-up, no targets")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="default TEST_POSTGRES_URL")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the context and every scenario's req/s, p50_ms, p99_ms, ratios to bare "
        "(rps_to_bare, p99_to_bare) and error to PATH as JSON; null when not measured",
    )
    parser.add_argument(
        "--users",
        type=int,
        metavar="N",
        help="seed N users (2 or more) straight into each service scenario's database and read a random "
        "one per request (the reader, an admin, is one of them); default: one user, registered",
    )
    parser.add_argument(
        "--cache-url",
        action="append",
        default=[],
        metavar="URL",
        help="also measure hit with CACHE_URL=URL, another Redis topology (redis://, rediss://, unix://, "
        "redis+sentinel://h:p[,h:p]/service/db, rediss+sentinel://, redis+cluster://h:p[,h:p], "
        "rediss+cluster://): the scenario hit@<URL's scheme>, "
        "numbered when two share one; repeatable",
    )
    parser.add_argument(
        "--sentinel",
        action="store_true",
        help="start a throwaway Sentinel group for the run (a master, a replica, 3 sentinels; needs "
        "redis-server) and add its redis+sentinel:// URL as a --cache-url: hit@redis+sentinel",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="start a throwaway Redis Cluster for the run (three masters; needs redis-server and "
        "redis-cli) and add its redis+cluster:// URL as a --cache-url: hit@redis+cluster",
    )
    args = parser.parse_args(argv)
    # Checked now, not after minutes of measuring.
    if args.json and not args.json.parent.is_dir():
        parser.error(f"--json: no directory {args.json.parent}")
    if args.smoke:
        args.duration, args.connections = 1, 4
    if args.duration < 1 or args.connections < WRK_THREADS:
        parser.error(f"--duration must be >= 1 and --connections >= {WRK_THREADS}")
    if args.users is not None and args.users < 2:
        parser.error("--users must be >= 2: the reader and at least one other user")
    for url in args.cache_url:
        if url.partition("://")[0] not in REDIS_SCHEMES:
            parser.error(
                f"--cache-url {url}: not a Redis URL ({', '.join(f'{s}://' for s in REDIS_SCHEMES)})"
            )
        try:
            if is_sentinel(url):
                sentinel_group(url)
            elif is_cluster(url):
                cluster_nodes(url)
        except ValueError as error:
            parser.error(f"--cache-url {url}: {error}")
    return args


def cache_scenarios(urls: list[str]) -> tuple[tuple[str, str], ...]:
    """(hit@<scheme>, URL) for each URL, numbered -1, -2, ... when their scheme is shared."""
    schemes = [url.partition("://")[0] for url in urls]
    numbers: dict[str, int] = {}
    named = []
    for scheme, url in zip(schemes, urls, strict=True):
        if schemes.count(scheme) > 1:
            numbers[scheme] = numbers.get(scheme, 0) + 1
            scheme = f"{scheme}-{numbers[scheme]}"
        named.append((f"{HIT_AT}{scheme}", url))
    return tuple(named)


def start_sentinel(stack: contextlib.ExitStack, workdir: Path) -> str:
    """--sentinel: tests/support/sentinel.py's group in `workdir`/sentinel; its URL."""
    from tests.support import sentinel

    def describe(group: Any) -> str:
        sentinels = ", ".join(f":{port}" for port in group.sentinel_ports)
        return f"master :{group.master_port}, replica :{group.replica_port}, sentinels {sentinels}"

    what = "a Sentinel group: a master, a replica and 3 sentinels"
    group = start_servers(stack, workdir / "sentinel", what, sentinel.sentinel_group, describe)
    return group.url(SENTINEL_DB)


def start_cluster(stack: contextlib.ExitStack, workdir: Path) -> str:
    """--cluster: tests/support/cluster.py's Cluster in `workdir`/cluster; its URL."""
    from tests.support import cluster

    def describe(started: Any) -> str:
        return "masters " + ", ".join(f":{port}" for port in started.ports)

    what = "a Redis Cluster: three masters"
    return start_servers(stack, workdir / "cluster", what, cluster.redis_cluster, describe).url()


def start_servers(
    stack: contextlib.ExitStack,
    directory: Path,
    what: str,
    servers: Callable[[Path], contextlib.AbstractContextManager[Any]],
    describe: Callable[[Any], str],
) -> Any:
    """The test support's `servers` started in `directory`, stopped (every process) when `stack`
    closes. ScenarioFailed when they do not come up."""
    import pytest  # the test support reports its failures as a test's (pytest.fail)

    directory.mkdir()
    progress(f"starting {what}")
    try:
        started = stack.enter_context(servers(directory))
    except pytest.fail.Exception as error:
        raise ScenarioFailed(f"{what.partition(':')[0]} did not start: {error}")
    progress(f"{what.partition(':')[0]} up: {describe(started)}")
    return started


def terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every server is stopped and every schema dropped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    for flag, programs in (("sentinel", ("redis-server",)), ("cluster", ("redis-server", "redis-cli"))):
        if getattr(args, flag) and any(shutil.which(program) is None for program in programs):
            needs = " and ".join(programs)
            print(f"--{flag} needs {needs}: apt-get install -y redis-server", file=sys.stderr)
            return 2
    if args.sentinel or args.cluster:
        sys.path.append(str(ROOT))  # their servers are the tests' (tests/support), not installed
    signal.signal(signal.SIGTERM, terminate)
    load = Load(args.duration, args.connections, warmup=not args.smoke)
    try:
        # Closed in reverse: the Sentinel group stops before its directory goes.
        with contextlib.ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-read-")))
            cache_urls = [
                *args.cache_url,
                *([start_sentinel(stack, workdir)] if args.sentinel else []),
                *([start_cluster(stack, workdir)] if args.cluster else []),
            ]
            population = None
            if args.users:
                population = Population.create(
                    workdir, args.users, password_hash=password_hash(), progress=progress
                )
            settings = Settings(
                load, args.redis_url, args.postgres_url, workdir, population, cache_scenarios(cache_urls)
            )
            outcomes = run_all(settings)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    except ScenarioFailed as error:  # only --sentinel's group or --cluster's, before any scenario
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    machine = context(load, args.users, settings.cache_urls)
    missed = report(outcomes, machine, smoke=args.smoke)
    if args.json:
        write_json(args.json, outcomes, machine)
    failed = [outcome.scenario for outcome in outcomes if outcome.error]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
