"""Profile one request scenario: one sync gunicorn worker under wrk, sampled by py-spy.

    .venv/bin/python bench/profile_read.py SCENARIO [--seconds S] [--top N] [--raw PATH]

SCENARIO is one of bench/http_read.py's service scenarios: `hit`, `304`, `me` (Redis),
`local-hit`, `local-304`, `local-me` (the embedded default's local store), `sqlite`, `postgres`
(no cache); or `miss`: the Redis scenario's server with 300,000 users seeded
(bench/population.py) and its cache cold, an admin reading a random one per request, so nearly
every read is a cache miss and its fill (tag versions, lease, load, conditional store); or
`login`: POST /api/auth/login of one user, over and over, on PostgreSQL + Redis with argon2 at
the benchmarks' cheap cost, so that what a login does around its verification shows. The
server runs as http_read runs it (production settings, its gunicorn.conf.py without the access
log) but with one worker, so every sample is of the one process serving; wrk -t1 -c4 loads it
while py-spy records it at 200 Hz for S seconds (default 9). It prints
req/s under the profiler, then the functions with the largest share of the worker's samples,
inclusive (the function and what it calls) and exclusive, each as `function (file:line)`.
--raw PATH keeps py-spy's collapsed stacks.

py-spy is needed (`.venv/bin/pip install py-spy`; exit 2 without it), and may need
CAP_SYS_PTRACE in a container.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import http_read as bench  # bench/, this script's directory, is first on sys.path
from population import Population

SCENARIOS = ("hit", "304", "me", "local-hit", "local-304", "local-me", "sqlite", "postgres", "miss", "login")
MISS_USERS = 300_000
PLUMBING = 0.99  # frames in nearly every sample (gunicorn's loop, the worker): not shown


@contextlib.contextmanager
def environment(scenario: str, workdir: Path) -> Iterator[dict[str, str]]:
    if scenario.startswith(bench.LOCAL):
        with bench.deployment(scenario, workdir, embedded=True) as env:
            yield env
    elif scenario == "sqlite":
        yield bench.service_env(
            bench.instance(workdir, scenario), bench.sqlite_url(workdir, scenario), "none"
        )
    elif scenario == "login":
        with bench.deployment(scenario, workdir, embedded=False) as env:
            yield env
    elif scenario == "postgres":
        with bench.postgres_schema(bench.DEFAULT_POSTGRES_URL) as database:
            yield bench.service_env(bench.instance(workdir, scenario), database, "none")
    else:
        with bench.redis_prefix(bench.DEFAULT_REDIS_URL) as prefix:
            home, database = bench.instance(workdir, scenario), bench.sqlite_url(workdir, scenario)
            yield bench.service_env(home, database, bench.DEFAULT_REDIS_URL, cache_prefix=prefix)


def worker_pid(base: str) -> int:
    """The one worker of the gunicorn listening at `base` (the newest of its processes)."""
    port = base.rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-f", f"gunicorn.*127.0.0.1:{port}"], capture_output=True, text=True)
    return max(int(pid) for pid in found.stdout.split())


def record(scenario: str, seconds: int, raw: Path, workdir: Path) -> str:
    """Runs the scenario under wrk and py-spy; returns wrk's output."""
    with environment(scenario, workdir) as env:
        population = None
        if scenario == "miss":  # seeded, not warmed: the cache starts cold
            population = Population.create(
                workdir, MISS_USERS, password_hash=bench.password_hash(), progress=bench.progress
            )
            bench.migrate(env)
            population.fill(scenario, env["DATABASE_URL"])
        with bench.service(scenario, env, workdir) as base:
            output = load_and_record(scenario, base, seconds, raw, population)
    return output


def load_and_record(scenario: str, base: str, seconds: int, raw: Path, population: Population | None) -> str:
    url, etag, auth = bench.seed(base, population)
    headers = dict(auth)
    script = population.script() if population else ()
    if scenario.endswith("me"):
        url = f"{base}/api/auth/me"
    elif scenario.endswith("304"):
        headers["If-None-Match"] = etag
    elif scenario == "login":
        url, lua = f"{base}/api/auth/login", raw.with_name("login.lua")
        credentials = json.dumps({"email": bench.bare_app.EMAIL, "password": bench.PASSWORD})
        lua.write_text(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(credentials)}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        headers, script = {}, (str(lua),)
    argv = bench.wrk_argv(url, seconds + 2, 4, headers, script, threads=1)
    load = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # past the connections' set-up
    spy = [str(bench.BIN / "py-spy"), "record", "-r", "200", "-d", str(seconds), "-f", "raw"]
    done = subprocess.run([*spy, "-o", str(raw), "-p", str(worker_pid(base))], capture_output=True, text=True)
    output, _ = load.communicate(timeout=seconds + 60)
    if done.returncode != 0:
        raise bench.ScenarioFailed(f"py-spy exited with {done.returncode}: {done.stderr[-2000:]}")
    return output


def shares(raw: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples in all, and per frame the samples it is in (inclusive) and on top of (exclusive)."""
    total, inclusive, exclusive = 0, collections.Counter[str](), collections.Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [frame.replace(str(bench.ROOT) + "/", "") for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        exclusive[frames[-1]] += samples
    return total, inclusive, exclusive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--seconds", type=int, default=9)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", type=Path)
    args = parser.parse_args(argv)
    if not (bench.BIN / "py-spy").exists() or shutil.which("wrk") is None:
        print("profile_read needs py-spy (.venv/bin/pip install py-spy) and wrk", file=sys.stderr)
        return 2
    bench.WORKERS = 1
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        workdir = Path(tmp)
        raw = args.raw or workdir / "stacks.txt"
        output = record(args.scenario, args.seconds, raw, workdir)
        total, inclusive, exclusive = shares(raw)
    rps = bench.parse_wrk(output).rps
    print(f"{args.scenario}: {rps:.0f} req/s under the profiler, {total} samples (one worker, wrk -t1 -c4)")
    print("\ninclusive")
    shown = [(frame, n) for frame, n in inclusive.most_common() if n < PLUMBING * total]
    for frame, samples in shown[: args.top]:
        print(f"{100 * samples / total:5.1f} %  {frame}")
    print("\nexclusive")
    for frame, samples in exclusive.most_common(args.top):
        print(f"{100 * samples / total:5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
