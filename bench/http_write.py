"""Benchmark: PATCH /api/users/{id} beside a bare Flask route doing one SQLAlchemy UPDATE of the
same row, in one run.

A PATCH of the initials is the service's cheapest write: the access check, the user's read, a
conditional UPDATE in a transaction that also writes its events (the outbox with EVENTS_URL),
and the read cache's invalidation. The peer (bench/peer_apps.py's update_app) does one
`UPDATE users SET initials = …, version = version + 1 … RETURNING …` in a transaction on the
same database and row, with no authentication. Each request carries new initials (a PATCH that
changes nothing writes nothing).

    sqlite           the service on the embedded default: a SQLite file and the local store
    sqla-sqlite      update_app on that SQLite file, the same row
    postgres         the service on PostgreSQL (a schema of its own) with Redis (a key prefix)
    sqla-postgres    update_app on that schema, the same row

wrk sends the PATCHes over one connection (`wrk -t1 -c1 -s …`): writes to one row are taken one
at a time however many clients send them, and the service answers a write that loses a race
with a 409 (read again), which would be measured as failures. Both servers run under gunicorn
with 2 sync workers, as in bench/http_read.py, whose helpers this uses.

    .venv/bin/python bench/http_write.py [--duration S] [--json PATH]

It prints req/s, p50 and p99 per scenario and each service scenario's ratios to its peer. Exit 1
when a scenario fails (a pre-check that does not answer 200, or wrk's non-2xx responses).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import http_read  # bench/, this script's directory, is first on sys.path
from http_read import BENCH, Outcome, ScenarioFailed, WrkResult, http, parse_wrk, progress

# Every request new initials: the thread's id and a counter (wrk runs one Lua state per thread).
SCRIPT = """
local counter = 0
function setup(thread) thread:set("id", math.random(100000)) end
function init(args) auth = args[1] end
function request()
  counter = counter + 1
  local body = '{"initials": "T' .. id .. '-' .. counter .. '"}'
  return wrk.format("PATCH", nil, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
"""
CONFIGURATIONS = {"sqlite": "sqla-sqlite", "postgres": "sqla-postgres"}  # the service, its peer


def patch(url: str, auth: dict[str, str], initials: str) -> None:
    body = json.dumps({"initials": initials}).encode()
    status, _, answer = http(url, "PATCH", {"Content-Type": "application/json", **auth}, body)
    if status != 200:
        raise ScenarioFailed(f"pre-check PATCH {url} answered {status}: {answer[:200]!r}")


def wrk_patch(name: str, url: str, auth: dict[str, str], seconds: int, script: Path) -> Outcome:
    try:
        patch(url, auth, "PRE")
        lua = (str(script), auth.get("Authorization", ""))
        argv = http_read.wrk_argv(url, seconds, 1, {}, lua, threads=1)
        progress(f"{name}: wrk -t1 -c1 -d{seconds}s PATCH {url}")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise ScenarioFailed(f"wrk exited with {done.returncode}: {done.stderr or done.stdout}")
        result = parse_wrk(done.stdout)
    except (ScenarioFailed, OSError, subprocess.SubprocessError) as error:
        return Outcome(name, None, str(error) or repr(error))
    problems = result.problems()
    return Outcome(name, result, "; ".join(problems) if problems else None)


def configuration(name: str, args: argparse.Namespace, workdir: Path, script: Path) -> list[Outcome]:
    """The service's PATCH, then (its server stopped) the peer's on the same row."""
    deployed = http_read.deployment(
        name, workdir, embedded=name == "sqlite", redis_url=args.redis_url, postgres_url=args.postgres_url
    )
    with deployed as env:
        with http_read.service(name, env, workdir) as base:
            url, _, auth = http_read.seed(base)
            service = wrk_patch(name, url, auth, args.duration, script)
        path = url.removeprefix(base)
        peer_env = http_read.peer_env(env["DATABASE_URL"])
        peer = CONFIGURATIONS[name]
        with http_read.gunicorn(peer, "peer_apps:update_app", BENCH, peer_env, workdir) as peer_base:
            return [service, wrk_patch(peer, f"{peer_base}{path}", {}, args.duration, script)]


def row(outcome: Outcome, peer: WrkResult | None) -> str:
    result = outcome.result
    if result is None:
        return f"{outcome.scenario:<15}{'FAILED':>9}  {outcome.error}"
    line = f"{outcome.scenario:<15}{result.rps:>9.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
    if peer is not None and peer is not result:
        line += (
            f"{http_read.ratio(result.rps, peer.rps):>12}{http_read.ratio(result.p99_ms, peer.p99_ms):>10}"
        )
    return line + (f"  FAILED: {outcome.error}" if outcome.error and result else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--redis-url", default=http_read.DEFAULT_REDIS_URL)
    parser.add_argument("--postgres-url", default=http_read.DEFAULT_POSTGRES_URL)
    args = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-http-write-") as directory:
        workdir = Path(directory)
        script = workdir / "patch.lua"
        script.write_text(SCRIPT)
        for name in CONFIGURATIONS:
            try:
                outcomes += configuration(name, args, workdir, script)
            except http_read.SETUP_ERRORS as error:
                outcomes += [Outcome(name, None, str(error)), Outcome(CONFIGURATIONS[name], None, str(error))]
    results = {outcome.scenario: outcome.result for outcome in outcomes}
    print(f"PATCH /api/users/{{id}}, wrk -t1 -c1 -d{args.duration}s, gunicorn -w 2 -k sync")
    print(f"{'scenario':<15}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s/peer':>12}{'p99/peer':>10}")
    for outcome in outcomes:
        print(row(outcome, results.get(CONFIGURATIONS.get(outcome.scenario, ""))))
    if args.json:
        document = {
            o.scenario: None
            if o.result is None
            else {"rps": o.result.rps, "p50_ms": o.result.p50_ms, "p99_ms": o.result.p99_ms, "error": o.error}
            for o in outcomes
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(outcome.error for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
