# Over 200 lines: the soak's setup, its final checks and its table read best in one place.
"""Soak under faults: the whole service under a mixed load while Redis is paused and killed and the
database cut off at random moments; it counts what must never happen.

The service runs as in production (APP_ENV=production, MAIL_BACKEND=log, cheap argon2): one
gunicorn master with 2 sync workers (the checkout's gunicorn.conf.py) on PostgreSQL and Redis,
with the durable transport when RabbitMQ answers (`user-service relay` and one `user-service
worker` running every worker subscriber, the default retry delays; each restarted when it
exits, as a supervisor would, and its exits printed).
PostgreSQL is reached by every process through a TCP relay of the soak's own (bench/soak_faults.py),
in a schema `bench_<random>` (migrated, dropped at the end); Redis is a redis-server of its own on
a free port, no persistence; RabbitMQ is the default vhost under EVENTS_PREFIX `soak.<random>.`,
its exchange and queues deleted at the end. Without RabbitMQ the events stay in-process, said so
in the table; under CI=true a missing RabbitMQ is an error (exit 2).

--clients threads (default 5), each owning --accounts accounts (default 3), call the service one
request at a time (bench/soak_load.py): GET the user (half with If-None-Match), GET /api/auth/me,
PATCH the initials (half with If-Match), login, refresh, logout then the old access token, roles
changed by an admin, subscribe, pay (the admin), cancel, GET the activity. From a seeded schedule
(--seed), after 3 s of load: Redis paused (SIGSTOP, then SIGCONT), Redis killed (and started
again, empty), the database cut off (every connection through the relay dropped and new ones
refused), each 2-5 s, 3-8 s apart (shorter in a run under about 40 s, so each still fits), each
kind at least once. After --duration seconds (default 120)
everything is healed, the events drain, and the final state is checked.

The "never" columns, each must be 0 (exit 1 otherwise, or when a fault kind did not happen):

    stale reads            a read showing a value older than the field's last acknowledged write
                           (or a 304 for an ETag from before it, or another session in /me)
    lost field updates     after the run, the database lacks an acknowledged initials, roles or
                           subscription status, or the API (cache) disagrees with the database
    accepted after logout  a 2xx to an access token whose logout was acknowledged with 204
    5xx other than 503     any 5xx but 503; a 503 or no answer at all outside the outages (a fault's
     in outages            window and GRACE seconds after it)
    events lost            an outbox event without its effect (an inbox row for each subscriber
                           bound to its type, a login_activity row for logins, refreshes and
                           logouts), or an acknowledged login, refresh or logout with no event
    events applied twice   an activity row of no event, or more events of a kind for an account
                           than its logins, refreshes or logouts (answered or not)

A payment's 202 says it is recorded; its activation, normally done before the answer, is
applied later by the worker when its consumer failed in the request (docs/contexts/
subscriptions.md): until a read shows it active, pending is no stale read (counted in the
context line), and the final check wants every paid subscription active.

A write answered 5xx or not at all may have happened or not: until the next acknowledged write
of that field, a read may show either. Throughput is printed within and outside the faults.

    .venv/bin/python bench/soak.py [--duration S] [--seed N] [--clients N] [--accounts N]
                                   [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import events  # bench/, this script's directory, is first on sys.path (it puts the checkout next)
import kombu
from soak_faults import GAPS, KINDS, LASTS, Faults, RedisServer, Relay, schedule
from soak_load import LOGINS, Account, Admin, Api, Client, Known, Tally
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from adapters.sqlalchemy.tables import inbox, login_activity, outbox, subscriptions, users
from app import config
from app.events.processes import topology

ROOT, BIN = events.ROOT, events.BIN
PASSWORD = "Soak-Passw0rd"
GRACE = 2.0  # seconds after a fault in which a 503 or a lost connection still counts as the outage
DRAIN_TIMEOUT = 150.0  # the default retry delays end with 30 s, and a retry may wait on another
STARTUP_TIMEOUT = 30.0
LOGIN_EVENTS = ("UserLoggedIn", "UserLoggedOut")


def progress(message: str) -> None:
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    print(f"[soak {stamp}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(env: dict[str, str], logs: Path) -> Iterator[int]:
    """`gunicorn -w 2 wsgi:app` in the checkout (its gunicorn.conf.py), live; its port."""
    port = free_port()
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env}
    log = logs / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the workers are stopped with it
        )
    try:
        api = Api(port, Tally())
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while api("GET", "/health/live", "live").status != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise events.BenchFailed(f"gunicorn did not come up:\n{tail}")
            time.sleep(0.2)
        progress(f"gunicorn -w 2 on :{port} (pid {process.pid})")
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class Supervised:
    """`user-service <kind>` started again when it exits, as a process supervisor would; each exit
    is kept (its status and last error line), its log kept beside the new one's."""

    def __init__(self, kind: str, env: dict[str, str], logs: Path, ready: str) -> None:
        self.kind, self._env, self._logs = kind, env, logs
        self.exits: list[str] = []
        self.process = events.Process(kind, env, logs)
        self.process.wait_for(ready)
        progress(f"{kind} ready (pid {self.process.process.pid})")

    def check(self) -> None:
        status = self.process.process.poll()
        if status is None:
            return
        errors = [line for line in self.process.text().splitlines() if "Error" in line]
        self.exits.append(f"{self.kind} exited with {status}: {(errors or ['?'])[-1].strip()[:240]}")
        progress(f"{self.exits[-1]}; started again")
        self.process.log.rename(self._logs / f"{self.kind}-{len(self.exits)}.log")
        self.process = events.Process(self.kind, self._env, self._logs)

    def stop(self) -> None:
        self.process.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rabbitmq_url(url: str) -> str | None:
    """`url` when RabbitMQ answers there; None when not (an error under CI=true)."""
    try:
        version = events.check_rabbitmq(url)
    except events.Unavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            raise events.Unavailable(f"{error} (CI=true: the soak runs with the durable transport)")
        progress(f"{error}: events stay in-process")
        return None
    progress(f"RabbitMQ {version}")
    return url


# --- the load -------------------------------------------------------------------------------


def accounts(api: Api, clients: int, per_client: int) -> list[list[Account]]:
    """Registered and logged-in accounts, `per_client` for each client."""
    made = []
    for c in range(clients):
        own = []
        for n in range(per_client):
            email = f"soak-{c}-{n}-{secrets.token_hex(3)}@example.com"
            body = {"email": email, "password": PASSWORD, "initials": f"I{c}{n}"}
            created = api("POST", "/api/users", "register", body=body)
            if created.status != 201:
                raise events.BenchFailed(f"registering {email}: {created.status} {created.body}")
            account = Account(
                created.body["id"],
                email,
                PASSWORD,
                Known(f"I{c}{n}"),
                Known(frozenset({"user"})),
                Known(None),
            )
            tokens = api("POST", "/api/auth/login", "login", body={"email": email, "password": PASSWORD})
            if tokens.status != 200:
                raise events.BenchFailed(f"logging {email} in: {tokens.status} {tokens.body}")
            account.token, account.refresh = tokens.body["access_token"], tokens.body["refresh_token"]
            account.session = tokens.body["session_id"]
            account.activity["login"] += 1
            own.append(account)
        made.append(own)
    return made


def latest_subscription(engine: Engine, user_id: str) -> tuple[str, str] | None:
    query = (
        select(subscriptions.c.id, subscriptions.c.status)
        .where(subscriptions.c.user_id == user_id)
        .order_by(subscriptions.c.created_at.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return (str(row.id), row.status) if row else None


# --- the end: drain and check -----------------------------------------------------------------


def depths(env: dict[str, str]) -> dict[str, int]:
    """Messages ready in every worker subscriber's queue, retry queues and error queue."""
    layout = topology(config.load(env))
    names = []
    for name in layout.bindings:
        names.append(layout.queue(name))
        names += [layout.retry_queue(name, n) for n in range(1, len(layout.retry_delays) + 1)]
        names.append(layout.error_queue(name))
    with (
        kombu.Connection(env["EVENTS_URL"], connect_timeout=5) as connection,
        connection.channel() as channel,
    ):
        return {name: int(channel.queue_declare(name, passive=True).message_count) for name in names}


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def drain(engine: Engine, env: dict[str, str], processes: list[Supervised]) -> float:
    """Until every outbox row is sent, every queue empty and the inbox still for a second;
    the seconds it took (BenchFailed after DRAIN_TIMEOUT)."""
    began, seen = time.monotonic(), -1
    unsent = select(text("count(*)")).select_from(outbox).where(outbox.c.sent_at.is_(None))
    while time.monotonic() - began < DRAIN_TIMEOUT:
        for process in processes:
            process.check()
        done = count(engine, select(text("count(*)")).select_from(inbox))
        queued = sum(v for k, v in depths(env).items() if not k.endswith("_error"))
        if count(engine, unsent) == 0 and queued == 0 and done == seen:
            return time.monotonic() - began
        seen = done
        time.sleep(1.0)
    raise events.BenchFailed(f"events not drained in {DRAIN_TIMEOUT:.0f} s: queues {depths(env)}")


def final_state(api: Api, engine: Engine, everyone: list[Account], tally: Tally) -> list[str]:
    """Lost field updates: the database against what was acknowledged, the API against the
    database. Logged-out tokens are tried once more."""
    lost = []
    with engine.connect() as connection:
        rows = {str(r.id): r for r in connection.execute(select(users.c.id, users.c.initials, users.c.roles))}
    for account in everyone:
        row = rows[account.id]
        stored = (row.initials, frozenset(row.roles), latest_subscription(engine, account.id))
        wanted = (account.initials, account.roles, account.subscription)
        for name, value, known in zip(("initials", "roles", "subscription"), stored, wanted, strict=True):
            if not known.allows(value):
                lost.append(f"{account.email}: database {name} {value}, acknowledged {known.acked}")
        login = api(
            "POST", "/api/auth/login", "final login", body={"email": account.email, "password": PASSWORD}
        )
        if login.status != 200:
            account.unsure["login"] += 1
            lost.append(f"{account.email}: final login {login.status}")
            continue
        token = login.body["access_token"]
        account.activity["login"] += 1  # its event is checked with the others'
        user, me = (
            api("GET", f"/api/users/{account.id}", "final GET", token),
            api("GET", "/api/auth/me", "me", token),
        )
        summary = (me.body or {}).get("subscription")
        shown = (
            (user.body or {}).get("initials"),
            frozenset((user.body or {}).get("roles", ())),
            frozenset((me.body or {}).get("roles", ())),
            (summary["id"], summary["status"]) if summary and summary.get("id") else None,
        )
        if shown != (stored[0], stored[1], stored[1], stored[2]):
            lost.append(f"{account.email}: API shows {shown}, database {stored}")
        for dead in account.dead:
            if api("GET", "/api/auth/me", "final logged-out", dead).status != 401:
                tally.finding("after logout", f"{account.email}: a logged-out token accepted at the end")
    return lost


def event_checks(engine: Engine, env: dict[str, str] | None, everyone: list[Account]) -> dict[str, Any]:
    """Events lost and applied twice (see the module's docstring), and context."""
    with engine.connect() as connection:
        rows = Counter()
        activity = {}
        for r in connection.execute(
            select(login_activity.c.id, login_activity.c.user_id, login_activity.c.kind)
        ):
            activity[str(r.id)] = (str(r.user_id), r.kind)
            rows[(str(r.user_id), r.kind)] += 1
        recorded = (
            []
            if env is None
            else connection.execute(select(outbox.c.event_id, outbox.c.type, outbox.c.payload)).all()
        )
        processed = (
            set()
            if env is None
            else {(r.subscriber, str(r.event_id)) for r in connection.execute(select(inbox))}
        )
    lost: set[tuple] = set()
    twice: list[str] = []
    figures: dict[str, Any] = {"activity rows": len(activity)}
    if env is not None:
        bindings = topology(config.load(env)).bindings
        logins: dict[str, tuple[str, str]] = {}
        for event_id, kind, payload in recorded:
            for subscriber, types in bindings.items():
                if kind in types and (subscriber, str(event_id)) not in processed:
                    lost.add((subscriber, str(event_id)))
            if kind in LOGIN_EVENTS:
                data = json.loads(payload)
                logins[str(event_id)] = (str(data["user_id"]), data["kind"])
        for event_id in logins.keys() - activity.keys():
            lost.add(("auth.record_login_activity", event_id))
        twice += [f"activity row {row} of no event" for row in activity.keys() - logins.keys()]
        per_kind = Counter(logins.values())
        figures |= {
            "events in the outbox": len(recorded),
            "dead letters": sum(v for k, v in depths(env).items() if k.endswith("_error")),
        }
    else:
        per_kind = rows
    for account in everyone:
        for kind in LOGINS:
            have = per_kind[(account.id, kind)]
            lost |= {("acknowledged", account.id, kind, n) for n in range(have, account.activity[kind])}
            if (excess := have - account.activity[kind] - account.unsure[kind]) > 0:
                twice += [
                    f"{account.email}: {have} {kind} events, {account.activity[kind]} acknowledged, "
                    f"{account.unsure[kind]} unanswered"
                ] * excess
    figures |= {"events lost": len(lost), "events applied twice": len(twice)}
    figures["examples"] = [f"event lost: {e}" for e in sorted(lost)[:5]]
    figures["examples"] += [f"event twice: {t}" for t in twice[:5]]
    return figures


# --- the report -----------------------------------------------------------------------------


def overlaps(start: float, end: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= w_end + GRACE and end >= w_start for w_start, w_end in windows)


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of `spans`."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def kind_of(call: Any, applied: list[Any]) -> str:
    """The fault whose window (with GRACE) `call` overlaps first."""
    for fault in applied:
        if overlaps(call.start, call.end, [(fault.start, fault.end or fault.start)]):
            return fault.kind
    return "none"


def report(result: dict[str, Any]) -> int:
    tally: Tally = result["tally"]
    windows = [(a.start, a.end or a.start) for a in result["faults"]]
    began, ended = result["began"], result["ended"]
    calls = [c for c in tally.calls if began <= c.start < ended]
    during = [overlaps(c.start, c.end, windows) for c in calls]
    inside = [c for c, hit in zip(calls, during, strict=True) if hit]
    faulted = covered([(s, min(e + GRACE, ended)) for s, e in windows])
    elapsed = ended - began
    not_503 = [c for c in calls if c.status >= 500 and c.status != 503]
    outside = [c for c in calls if c.status in (0, 503) and not overlaps(c.start, c.end, windows)]
    print(
        f"soak: {elapsed:.0f} s of load, seed {result['seed']}, {result['clients']} clients x "
        f"{result['accounts']} accounts, gunicorn -w 2 on PostgreSQL + Redis, events {result['events']}"
    )
    print(f"\n{'throughput':<34}{'requests':>9}{'req/s':>9}")
    for name, part, seconds in (
        ("whole run", calls, elapsed),
        ("outside faults", [c for c, hit in zip(calls, during, strict=True) if not hit], elapsed - faulted),
        (f"during faults (+{GRACE:.0f} s after)", inside, faulted),
    ):
        print(f"{name:<34}{len(part):>9}{len(part) / max(seconds, 1e-9):>9.1f}")
    print(f"{'acknowledged writes':<34}{tally.acked_writes:>9}")
    print(f"\n{'fault':<16}{'count':>6}  seconds each")
    for kind in KINDS:
        lasted = [f"{a.end - a.start:.1f}" for a in result["faults"] if a.kind == kind and a.end]
        print(f"{kind:<16}{len(lasted):>6}  {', '.join(lasted)}")
    never = {
        "stale reads": len(tally.found["stale"]),
        "lost field updates": len(result["lost"]),
        "accepted after logout": len(tally.found["after logout"]),
        "5xx other than 503 in outages": len(not_503) + len(outside),
        "events lost": result["events_figures"]["events lost"],
        "events applied twice": result["events_figures"]["events applied twice"],
    }
    print(f"\n{'never':<34}{'count':>9}")
    for name, value in never.items():
        print(f"{name:<34}{value:>9}")
    in_503 = Counter(f"{c.what} in {kind_of(c, result['faults'])}" for c in inside if c.status == 503)
    no_answer = sum(1 for c in inside if c.status == 0)
    context = {
        "503 in outages": sum(in_503.values()),
        "no answer in outages": no_answer,
        "non-503 5xx": len(not_503),
        "503 or no answer outside": len(outside),
        "other unexpected answers": len(tally.found["unexpected"]),
        "reads of a paid subscription still pending (activation after the 202)": len(
            tally.found["activated later"]
        ),
        **{k: v for k, v in result["events_figures"].items() if k not in never and k != "examples"},
        "drained in s": round(result["drained"], 1),
        "relay/worker exits (restarted)": len(result["exits"]),
    }
    print("\ncontext (not judged): " + ", ".join(f"{k} {v}" for k, v in context.items()))
    if in_503:
        shown = ", ".join(f"{k} {v}" for k, v in in_503.most_common())
        print(f"503 in outages, by request and fault: {shown}")
    examples = [*tally.found["stale"][:5], *result["lost"][:5], *tally.found["after logout"][:5]]
    examples += [f"{c.what} -> {c.status} at +{c.start - began:.1f} s" for c in (not_503 + outside)[:5]]
    examples += result["events_figures"]["examples"]
    examples += [f"unexpected: {u}" for u in tally.found["unexpected"][:5]]
    for line in examples:
        print(f"  {line}")
    missing = [kind for kind in KINDS if not any(a.kind == kind for a in result["faults"])]
    if missing:
        print(f"FAILED: no {', '.join(missing)} in the run")
    failed = [name for name, value in never.items() if value]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    for line in result["exits"]:
        print(f"  process exit (restarted): {line}")
    return 1 if failed or missing else 0


# --- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack: contextlib.ExitStack, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    planned = schedule(rng, args.duration)
    amqp = rabbitmq_url(args.amqp_url)
    redis_server = RedisServer(workdir)
    stack.callback(redis_server.stop)
    progress(f"redis-server on :{redis_server.port}")
    direct, version = stack.enter_context(events.postgres_schema(args.postgres_url))
    progress(f"PostgreSQL {version}, schema {make_url(direct).query['options']}")
    database = Relay((make_url(direct).host or "127.0.0.1", make_url(direct).port or 5432))
    stack.callback(database.close)
    relayed = make_url(direct).set(host="127.0.0.1", port=database.port).render_as_string(hide_password=False)
    env = {
        **events.SERVICE_ENV,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": relayed,
        "CACHE_URL": redis_server.url,
        "REGISTRATIONS_PER_CLIENT": "10000/minute",
        "REGISTRATIONS": "10000/minute",
    }
    if amqp:
        env |= {
            "EVENTS_URL": amqp,
            "EVENTS_PREFIX": f"soak.{secrets.token_hex(4)}.",
        }
        stack.enter_context(events.broker_topology(env))
    admin_env = {
        **env,
        "DATABASE_URL": direct,
        "ADMIN_PASSWORD": PASSWORD,
        "PATH": os.environ.get("PATH", ""),
    }
    created = subprocess.run(
        [str(BIN / "user-service"), "create-admin", "admin@soak.example.com"],
        env={**admin_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if created.returncode != 0:
        raise events.BenchFailed(f"create-admin: {created.stdout}{created.stderr}")
    processes: list[Supervised] = []
    if amqp:
        for kind, ready in (("relay", "operation=relay.start"), ("worker", "operation=events.consume")):
            processes.append(Supervised(kind, env, workdir, ready))
            stack.callback(processes[-1].stop)
    port = stack.enter_context(gunicorn(env, workdir))
    observer = create_engine(direct, poolclass=NullPool)
    stack.callback(observer.dispose)
    tally = Tally()
    api = Api(port, tally)
    admin = Admin(api, "admin@soak.example.com", PASSWORD)
    admin.login()
    owned = accounts(api, args.clients, args.accounts)
    faults = Faults(redis_server, database, planned, progress)
    stack.callback(faults.heal)
    stack.callback(faults.stop.set)
    clients = [
        Client(
            chr(65 + n),
            api,
            admin,
            own,
            random.Random(rng.random()),
            lambda user: latest_subscription(observer, user),
        )
        for n, own in enumerate(owned)
    ]
    progress(f"load for {args.duration} s, {len(planned)} faults planned (seed {args.seed})")
    began = time.monotonic()
    until = began + args.duration
    threads = [threading.Thread(target=faults.run, args=(began,), daemon=True)]
    threads += [threading.Thread(target=c.run, args=(until,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        while thread.is_alive():
            thread.join(0.5)
            for process in processes:
                process.check()
    ended = time.monotonic()
    faults.stop.set()
    threads[0].join()
    faults.heal()
    progress("load over, everything healed")
    drained = drain(observer, env, processes) if amqp else 0.0
    everyone = [account for own in owned for account in own]
    lost = final_state(api, observer, everyone, tally)
    if amqp:
        drained += drain(observer, env, processes)  # the final logins' events
    figures = event_checks(observer, env if amqp else None, everyone)
    return {
        "tally": tally,
        "faults": faults.windows(),
        "began": began,
        "ended": ended,
        "lost": lost,
        "events_figures": figures,
        "drained": drained,
        "seed": args.seed,
        "clients": args.clients,
        "accounts": args.accounts,
        "events": "durable (outbox, relay, 1 worker)" if amqp else "in-process",
        "exits": [exit for process in processes for exit in process.exits],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=120, help="seconds of load (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="the faults' and the load's (default random)")
    parser.add_argument("--clients", type=int, default=5, help="client threads (default 5)")
    parser.add_argument("--accounts", type=int, default=3, help="accounts per client (default 3)")
    parser.add_argument(
        "--postgres-url", default=events.DEFAULT_POSTGRES_URL, help="default TEST_POSTGRES_URL"
    )
    parser.add_argument("--amqp-url", default=events.DEFAULT_AMQP_URL, help="default TEST_AMQP_URL")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy every process's log to DIR")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(2**32)
    if args.clients < 1 or args.accounts < 1:
        parser.error("--clients and --accounts must be >= 1")
    try:
        schedule(random.Random(args.seed), args.duration)
    except ValueError as error:
        parser.error(f"--duration: {error}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, events.terminate)  # unwinds like Ctrl-C: everything cleaned up
    progress(f"faults each {LASTS[0]:.0f}-{LASTS[1]:.0f} s, {GAPS[0]:.0f}-{GAPS[1]:.0f} s apart")
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
            if args.keep_logs:  # copied before the directory goes (the stack closes in reverse)
                stack.callback(shutil.copytree, workdir, args.keep_logs, dirs_exist_ok=True)
            result = run(args, stack, workdir)
    except events.Unavailable as error:
        print(f"bench/soak.py: {error}", file=sys.stderr)
        return 2
    except (events.BenchFailed, RuntimeError, FileNotFoundError) as error:
        print(f"bench/soak.py FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress("interrupted; processes stopped, schema, queues deleted")
        return 130
    return report(result)


if __name__ == "__main__":
    sys.exit(main())
