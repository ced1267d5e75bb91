"""Benchmark: GraphQL `user(id)` beside REST `GET /api/users/{id}`, on one server, in one run.

The service runs as bench/http_read.py's `hit` scenario runs it: under gunicorn with 2 sync
workers on a free loopback port (its gunicorn.conf.py without the access log), in production
settings on a SQLite file with the Redis read cache (CACHE_URL=redis://…, under a key prefix of
its own), one registered user logged in and read a few times, so its entry is in the cache.
Every scenario reads that user with that user's access token; wrk loads the server on loopback
(`wrk -t2 -cC -dS --latency`, after a 1 s warm-up). Scenarios:

    bare          bench/bare_app.py: a constant body of the REST representation's size, the same
                  headers (its own server, started and stopped first): context
    rest-hit      GET /api/users/{id}, a cache hit, answered by the WSGI hot path (the baseline)
    graphql-get   GET /api/graphql?query={user(id:"…"){id email initials confirmed roles}}
                  (URL-encoded): Flask, Strawberry (the document parsed and validated once per
                  worker), the GetUser query handler through the read cache, an ETag of the body
    graphql-304   the same GET with If-None-Match: its ETag (the query runs; the body is not sent)
    graphql-post  POST /api/graphql with the same query as a JSON body (wrk's Lua script)

Before its measured run, each scenario's answer is checked with urllib: rest-hit 200 with the
user's representation; graphql-get and graphql-post 200 with `data.user` equal to that
representation and no `errors`, graphql-get with an ETag; graphql-304 a 304. The service's reads
of users by id through its read cache (cache_hits_total and cache_misses_total with
policy="user_by_id" at /metrics, with METRICS_TOKEN set, before and after the measured run) show
that every request of the service's scenarios was a cache hit: at least as many hits as wrk
completed requests (the requests in flight when wrk stops add a few) and no miss.

It prints req/s, p50 and p99 latency per scenario, their ratios to rest-hit, the requests and
the cache hits and misses of the measured run, with the machine (CPUs, the load average before
and after the run).

    .venv/bin/python bench/graphql_read.py [--duration S] [--connections C] [--smoke] [--json PATH]
                                           [--redis-url URL]

--json PATH also writes {"context": {cpus, load_average, load_average_before, python, wrk,
workers, wrk_threads, connections, duration_s, warmup}, "scenarios": [{name, rps, p50_ms,
p99_ms, rps_to_rest_hit, p99_to_rest_hit, requests, cache_hits, cache_misses, error}, ...]} in
the table's order; a number is null when the scenario has no measurement (cache_hits and
cache_misses for bare).

A scenario fails (exit 1) when its pre-check finds another answer than expected, wrk sees socket
errors or non-2xx/3xx responses, or (the service's scenarios) a read missed the cache or fewer
reads hit it than requests completed. --smoke (1 s, 4 connections, no warm-up) checks that
every scenario works. wrk is needed (`apt-get install -y wrk`; exit 2 without it). Redis is
--redis-url (default BENCH_REDIS_URL, else redis://127.0.0.1:6379/12); the service's keys are
deleted at the end. The SQLite file and INSTANCE_PATH live in a temporary directory.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import http_read  # bench/, this script's directory, is first on sys.path
from http_read import CacheReads, Load, Outcome, ScenarioFailed, Settings, WrkResult, http, progress

BASELINE = "rest-hit"
GRAPHQL = ("graphql-get", "graphql-304", "graphql-post")
SERVED = (BASELINE, *GRAPHQL)  # by the service, one server
SCENARIOS = ("bare", *SERVED)
QUERY = '{user(id:"%s"){id email initials confirmed roles}}'
GRAPHQL_PATH = "/api/graphql"
JSON = {"Content-Type": "application/json"}
NAME_WIDTH = max(len(name) for name in SCENARIOS) + 1


# --- pre-checks -------------------------------------------------------------------------------


def expect_json(name: str, answer: tuple[int, Any, bytes]) -> Any:
    """The body of a 200 as JSON."""
    status, _, body = answer
    if status != 200:
        raise ScenarioFailed(f"{name}: pre-check answered {status}, expected 200: {body[:300]!r}")
    try:
        return json.loads(body)
    except ValueError:
        raise ScenarioFailed(f"{name}: pre-check's body is not JSON: {body[:300]!r}")


def expect_user(name: str, answer: tuple[int, Any, bytes], representation: dict[str, Any]) -> None:
    """A GraphQL answer: 200, no errors, data.user the REST representation's fields."""
    document = expect_json(name, answer)
    if not isinstance(document, dict) or document.get("errors"):
        raise ScenarioFailed(f"{name}: pre-check answered errors: {answer[2][:300]!r}")
    user = (document.get("data") or {}).get("user")
    if user != representation:
        raise ScenarioFailed(f"{name}: data.user is {user!r}, REST's representation {representation!r}")


# --- measuring --------------------------------------------------------------------------------


def run(
    scenario: str,
    url: str,
    load: Load,
    headers: dict[str, str],
    script: tuple[str, ...] = (),
    counted: Callable[[], CacheReads] | None = None,
) -> Outcome:
    """http_read.measure's warm-up and measured run, after this script's own pre-check (a POST's
    answer cannot be checked with a GET of `url`); with `counted`, every read must have hit."""
    reads = None
    try:
        if load.warmup:
            progress(f"{scenario}: warm-up {http_read.WARMUP_SECONDS} s")
            http_read.wrk(url, http_read.WARMUP_SECONDS, load.connections, headers, script)
        progress(f"{scenario}: wrk -t{http_read.WRK_THREADS} -c{load.connections} -d{load.duration}s {url}")
        before = counted() if counted else None
        result = http_read.wrk(url, load.duration, load.connections, headers, script)
        if counted and before is not None:
            reads = counted() - before
    except (ScenarioFailed, OSError, subprocess.SubprocessError) as error:
        return Outcome(scenario, None, str(error) or repr(error))
    problems = result.problems()
    if reads is not None:
        if reads.misses:
            problems.append(f"{reads.misses} cache misses")
        if reads.hits < result.requests:
            problems.append(f"{reads.hits} cache hits for {result.requests} requests")
    return Outcome(scenario, result, "; ".join(problems) if problems else None, reads)


def post_script(workdir: Path, body: str) -> tuple[str, ...]:
    """wrk's Lua script sending `body` as a JSON POST (the -H headers stay)."""
    lua = workdir / "graphql_post.lua"
    lua.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return (str(lua),)


def served(settings: Settings) -> Iterator[Outcome]:
    """rest-hit and the GraphQL scenarios on one server with the Redis read cache, warm."""
    workdir, load = settings.workdir, settings.load
    with http_read.redis_cache(settings) as env, http_read.service("graphql", env, workdir) as base:
        url, _, auth = http_read.seed(base)  # registered, logged in, read a few times: cached
        counted = functools.partial(http_read.cache_reads, base)
        user_id = url.rsplit("/", 1)[1]
        query = QUERY % user_id

        representation = expect_json(BASELINE, http(url, headers=auth))
        if representation.get("id") != user_id:
            raise ScenarioFailed(f"{BASELINE}: pre-check's body is not the user's: {representation!r}")
        yield run(BASELINE, url, load, auth, counted=counted)

        get_url = f"{base}{GRAPHQL_PATH}?{urllib.parse.urlencode({'query': query})}"
        answer = http(get_url, headers=auth)
        expect_user("graphql-get", answer, representation)
        etag = answer[1].get("ETag")
        if not etag:
            raise ScenarioFailed(f"graphql-get: no ETag in {dict(answer[1])}")
        yield run("graphql-get", get_url, load, auth, counted=counted)

        conditional = {**auth, "If-None-Match": etag}
        http_read.expect_status(get_url, 304, conditional)
        yield run("graphql-304", get_url, load, conditional, counted=counted)

        body = json.dumps({"query": query})
        answer = http(f"{base}{GRAPHQL_PATH}", "POST", {**auth, **JSON}, body.encode())
        expect_user("graphql-post", answer, representation)
        script = post_script(workdir, body)
        yield run("graphql-post", f"{base}{GRAPHQL_PATH}", load, auth, script, counted)


def run_all(settings: Settings) -> list[Outcome]:
    return [
        *http_read.run_group(("bare",), http_read.bare(settings)),
        *http_read.run_group(SERVED, served(settings)),
    ]


# --- report -----------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> list[str]:
    baseline = {outcome.scenario: outcome.result for outcome in outcomes}.get(BASELINE)
    header = f"{'scenario':<{NAME_WIDTH}}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s/rest':>12}"
    header += f"{'p99/rest':>10}{'requests':>10}{'hits':>8}{'misses':>8}"
    lines = [header]
    for outcome in in_order(outcomes):
        result, name = outcome.result, outcome.scenario
        if result is None:
            lines.append(f"{name:<{NAME_WIDTH}}{'FAILED':>9}  {(outcome.error or '').splitlines()[0]}")
            continue
        row = f"{name:<{NAME_WIDTH}}{result.rps:>9.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
        row += http_read.ratios(result, baseline)
        hits, misses = (outcome.reads.hits, outcome.reads.misses) if outcome.reads else ("-", "-")
        row += f"{result.requests:>10}{hits:>8}{misses:>8}"
        lines.append(row + (f"  FAILED: {outcome.error}" if outcome.error else ""))
    return lines


def in_order(outcomes: list[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda outcome: SCENARIOS.index(outcome.scenario))


def context(load: Load, load_before: list[float]) -> dict[str, Any]:
    machine = http_read.context(load, None)
    del machine["users"]
    return {**machine, "load_average_before": load_before}


def report(outcomes: list[Outcome], machine: dict[str, Any]) -> None:
    before = ", ".join(f"{n:.2f}" for n in machine["load_average_before"])
    print(f"{http_read.context_line({**machine, 'users': None})} (before the run: {before})")
    print()
    print("\n".join(table(outcomes)))
    print(
        f"(req/s/rest, p99/rest: against {BASELINE}; hits, misses: the service's read-cache hits and "
        "misses of users by id during the measured run, from its /metrics)"
    )


def scenario_document(outcome: Outcome, baseline: WrkResult | None) -> dict[str, Any]:
    result, reads = outcome.result, outcome.reads

    def measured(field: str) -> Any:
        return getattr(result, field) if result else None

    def to_baseline(field: str) -> float | None:
        return http_read.rounded(http_read.quotient(measured(field), getattr(baseline, field, None)))

    return {
        "name": outcome.scenario,
        **{field: measured(field) for field in ("rps", "p50_ms", "p99_ms")},
        "rps_to_rest_hit": to_baseline("rps"),
        "p99_to_rest_hit": to_baseline("p99_ms"),
        "requests": measured("requests"),
        "cache_hits": reads.hits if reads else None,
        "cache_misses": reads.misses if reads else None,
        "error": outcome.error,
    }


def write_json(path: Path, outcomes: list[Outcome], machine: dict[str, Any]) -> None:
    baseline = {outcome.scenario: outcome.result for outcome in outcomes}.get(BASELINE)
    scenarios = [scenario_document(outcome, baseline) for outcome in in_order(outcomes)]
    path.write_text(json.dumps({"context": machine, "scenarios": scenarios}, indent=2) + "\n")
    progress(f"wrote {path}")


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--smoke", action="store_true", help="1 s, 4 connections, no warm-up")
    default = http_read.DEFAULT_REDIS_URL
    parser.add_argument("--redis-url", default=default, help=f"default {default}")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the context and every scenario's req/s, p50_ms, p99_ms, ratios to rest-hit, "
        "cache hits and misses and error to PATH as JSON; null when not measured",
    )
    args = parser.parse_args(argv)
    if args.json and not args.json.parent.is_dir():
        parser.error(f"--json: no directory {args.json.parent}")
    if args.smoke:
        args.duration, args.connections = 1, 4
    if args.duration < 1 or args.connections < http_read.WRK_THREADS:
        parser.error(f"--duration must be >= 1 and --connections >= {http_read.WRK_THREADS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, http_read.terminate)  # unwinds: the servers stop, the keys go
    load = Load(args.duration, args.connections, warmup=not args.smoke)
    load_before = [round(n, 2) for n in os.getloadavg()]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-graphql-read-") as workdir:
            settings = Settings(load, args.redis_url, http_read.DEFAULT_POSTGRES_URL, Path(workdir))
            outcomes = run_all(settings)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    machine = context(load, load_before)
    report(outcomes, machine)
    if args.json:
        write_json(args.json, outcomes, machine)
    failed = [outcome.scenario for outcome in outcomes if outcome.error]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
