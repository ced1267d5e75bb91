# Over 200 lines: every command of the service in one place, so --help lists them all.
"""`user-service`: apply migrations and serve the app with gunicorn."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import click
from gunicorn.app.base import BaseApplication
from sqlalchemy.engine import make_url

from app import DISTRIBUTION, config, instance
from app.instance import StartupError, describe
from app.logs import configure

log = logging.getLogger("user_service.cli")


class _Service(click.Group):
    """Settings or a schema that stop the service end a command with their lines, status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (config.ConfigError, StartupError) as error:
            click.echo(describe(error), err=True)
            ctx.exit(2)


@click.group(cls=_Service)
@click.version_option(package_name=DISTRIBUTION)
def main() -> None:
    """User service: accounts and sessions over HTTP."""
    configure()


@main.command()
def migrate() -> None:
    """Bring the database named by DATABASE_URL to the latest schema."""
    _migrate()


@main.command("graphql-schema")
def graphql_schema() -> None:
    """Print the GraphQL schema in SDL (docs/schema.graphql holds it)."""
    from app.graphql.schema import sdl  # the schema's modules only for this command

    click.echo(sdl(), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per process.")
def run(host: str, port: int, workers: int, threads: int) -> None:
    """Serve with gunicorn (the embedded SQLite database is migrated at start; PostgreSQL must be
    migrated first with `user-service migrate`)."""
    settings = config.load()
    instance.check_processes(settings, workers)
    if settings["auth"]["secret"] is None:  # made here once; every worker reads it
        instance.shared_secret(settings["instance_path"])
    instance.prepare_database(settings)  # here once, so that a schema behind stops the master
    _collect_metrics_from_every_worker()
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": "-",
        "errorlog": "-",
    }
    click.echo(f"Serving on http://{host}:{port} (API docs at /api/docs)")
    _Gunicorn(options).run()


@main.command("create-admin")
@click.argument("email")
@click.option("--initials", default="Admin", show_default=True)
@click.option(
    "--password",
    envvar="ADMIN_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="For a new account (an existing one keeps its own). Asked for when not given, or ADMIN_PASSWORD.",
)
def create_admin(email: str, initials: str, password: str) -> None:
    """Register EMAIL as an admin, or make the existing account with EMAIL one."""
    from app.factory import create_app
    from domain.errors import DomainError
    from domain.users.commands import ChangeUserRoles, RegisterUser
    from domain.users.rules import normalise_email

    _migrate()
    app = create_app()
    container = app.extensions["container"]
    bus = container.bus()
    try:
        with container.storage.uow() as uow:
            user = uow.users.get_by_email(normalise_email(email))
        if user is None:
            user = bus.handle(RegisterUser(email=email, initials=initials, password=password))
            click.echo(f"Registered {user.email} ({user.id})")
        else:
            click.echo(f"{user.email} exists: its password is left as it is")
        bus.handle(ChangeUserRoles(user_id=user.id, roles=frozenset(user.roles | {"admin"})))
    except DomainError as error:
        raise click.ClickException(_describe(container, error)) from error
    if user.status.value == "disabled":
        click.echo(f"{user.email} is an admin, but disabled: `user-service enable-user {user.email}`")
        return
    click.echo(f"{user.email} is an admin")


@main.command("enable-user")
@click.argument("email")
def enable_user(email: str) -> None:
    """Enable the account with EMAIL again (logins are accepted again; its ended sessions stay
    ended)."""
    from domain.users.commands import ChangeUserStatus

    user = _admin_command(email, lambda user: ChangeUserStatus(user_id=user.id, status="active"))
    click.echo(f"{user.email} is enabled")


@main.command("set-roles")
@click.argument("email")
@click.argument("roles", nargs=-1, required=True)
def set_roles(email: str, roles: tuple[str, ...]) -> None:
    """Give the account with EMAIL exactly ROLES (e.g. `user admin`); the last active admin
    keeps its role."""
    from domain.users.commands import ChangeUserRoles

    user = _admin_command(email, lambda user: ChangeUserRoles(user_id=user.id, roles=frozenset(roles)))
    click.echo(f"{user.email} has the roles {', '.join(sorted(user.roles))}")


def _admin_command(email: str, command: Callable[[Any], Any]) -> Any:
    """Run the command made for the account with EMAIL; its refusal is the command's error."""
    from app.factory import create_app
    from domain.errors import DomainError
    from domain.users.rules import normalise_email

    container = create_app().extensions["container"]
    with container.storage.uow() as uow:
        user = uow.users.get_by_email(normalise_email(email))
    if user is None:
        raise click.ClickException(f"no account has the email {email}")
    try:
        return container.bus().handle(command(user))
    except DomainError as error:
        raise click.ClickException(_describe(container, error)) from error


def _describe(container: Any, error: Any) -> str:
    catalogs = container.catalogs()
    problems = getattr(error, "errors", {})
    details = "; ".join(f"{field}: {catalogs.render(m, 'en')}" for field, ms in problems.items() for m in ms)
    return details or catalogs.render(error.message, "en")


@main.command("sweep-subscriptions")
@click.option("--limit", default=1000, show_default=True, help="Most subscriptions and payments per run.")
def sweep_subscriptions(limit: int) -> None:
    """Expire the subscriptions whose paid period is over and apply confirmed payments still
    unapplied. Run it every few minutes (cron, a systemd timer); entitlement already ends with
    the period, this brings the status and the session state in line."""
    from app.factory import create_app
    from domain.errors import DomainError
    from domain.subscriptions.commands import SweepSubscriptions

    _migrate()
    container = create_app().extensions["container"]
    try:
        result = container.bus().handle(SweepSubscriptions(limit=limit))
    except DomainError as error:  # e.g. the cache out of reach: saved, its cache writes tried at exit
        raise click.ClickException(_describe(container, error)) from error
    click.echo(f"expired {result.expired} subscription(s); retried {result.payments_retried} payment(s)")


_PROBE_PORT = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics, /health/live and /health/ready on 127.0.0.1:PORT (0: any free port).",
)


@main.command()
@_PROBE_PORT
def relay(port: int | None) -> None:
    """Publish the outbox to RabbitMQ (EVENTS_URL): run one or more next to the web servers.
    SIGTERM finishes the batch in hand."""
    from app.events.processes import run_relay, stop_on_signals

    container, settings = _events_container()
    run_relay(container, settings, stop_on_signals(), port)


@main.command()
@click.option(
    "--subscriber", "subscribers", multiple=True, help="Only these (default: every worker subscriber)."
)
@_PROBE_PORT
def worker(subscribers: tuple[str, ...], port: int | None) -> None:
    """Consume events from RabbitMQ (EVENTS_URL) and run the subscribers placed in workers
    (app/wiring/events.py). SIGTERM finishes the message in hand."""
    from app.events.processes import run_worker, stop_on_signals

    container, settings = _events_container()
    try:
        run_worker(container, settings, subscribers, stop_on_signals(), port)
    except ValueError as error:
        raise click.UsageError(str(error)) from error


@main.group("dead-letters")
def dead_letters() -> None:
    """Look at and replay the events a worker subscriber gave up on (its `_error` queue)."""


@dead_letters.command("list")
@click.argument("subscribers", nargs=-1)
@click.option("--limit", default=20, show_default=True, help="Messages shown per subscriber.")
def list_dead_letters(subscribers: tuple[str, ...], limit: int) -> None:
    """Count and show the dead letters of SUBSCRIBERS (default: every worker subscriber), left
    in their queues."""
    from adapters.rabbitmq.dead_letters import dead_letters, describe_dead_letter, held

    settings, layout, names = _dead_letter_queues(subscribers)
    for name in names:
        count = held(settings["events"]["url"], layout, name)
        if count is None:
            click.echo(f"{layout.error_queue(name)}: no such queue (no worker has run it)")
            continue
        click.echo(f"{layout.error_queue(name)}: {count} message(s)")
        for letter in dead_letters(settings["events"]["url"], layout, name, limit) if count else []:
            click.echo(f"  {describe_dead_letter(letter)}")


@dead_letters.command("replay")
@click.argument("subscribers", nargs=-1, required=True)
def replay_dead_letters(subscribers: tuple[str, ...]) -> None:
    """Move the dead letters of SUBSCRIBERS back to their queues, as first deliveries (after the
    cause is mended: a deployed fix, a server back)."""
    from adapters.rabbitmq.dead_letters import held, replay

    settings, layout, names = _dead_letter_queues(subscribers)
    for name in names:
        if held(settings["events"]["url"], layout, name) is None:
            click.echo(f"{layout.error_queue(name)}: no such queue (no worker has run it)")
            continue
        moved = replay(settings["events"]["url"], layout, name)
        click.echo(f"{layout.error_queue(name)}: {moved} message(s) replayed to {layout.queue(name)}")


def _dead_letter_queues(subscribers: tuple[str, ...]) -> tuple[dict, Any, list[str]]:
    from app.events.processes import topology

    settings = config.load()
    if not settings["events"]["durable"]:
        raise click.UsageError("EVENTS_URL is not set: events are delivered in-process, no queue holds them")
    layout = topology(settings)
    unknown = sorted(set(subscribers) - set(layout.bindings))
    if unknown:
        known = ", ".join(layout.bindings)
        raise click.UsageError(f"no such worker subscriber: {', '.join(unknown)} (known: {known})")
    return settings, layout, list(subscribers) or list(layout.bindings)


def _events_container() -> tuple[object, dict]:
    from app.factory import create_app

    settings = config.load()
    if not settings["events"]["durable"]:
        raise click.UsageError(
            "EVENTS_URL is not set: events are delivered in-process, no relay or worker runs"
        )
    return create_app().extensions["container"], settings


def _collect_metrics_from_every_worker() -> None:
    """prometheus_client's multiprocess mode: each worker writes its counters to files in
    PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. A directory of this run's own unless one
    is given (it must start empty)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = tempfile.mkdtemp(prefix="user-service-metrics-")
    master = os.getpid()

    def remove() -> None:  # workers inherit atexit handlers: only the master may remove it
        if os.getpid() == master:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def _migrate() -> None:
    settings = config.load()
    if settings["storage"] != "sql":
        log.info("operation=migrate storage=%s: nothing to migrate", settings["storage"])
        return
    instance.prepare_database(settings, migrate=True)
    url = make_url(settings["database_url"])
    log.info("operation=migrate database=%s: schema is up to date", url.render_as_string(hide_password=True))


class _Gunicorn(BaseApplication):
    """gunicorn driven from Python, so `run` works the same on every install."""

    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from app.factory import create_app

        return create_app()
