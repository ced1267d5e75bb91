"""What an operator has of the relay and the worker, on the real RabbitMQ: their probes and
metrics on a port of their own (`--port`), and the dead letters listed and replayed from the CLI."""

from __future__ import annotations

import json
import re
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import kombu
import pytest
from click.testing import CliRunner

from adapters.rabbitmq.messages import ERROR_MESSAGE, ERROR_TYPE, RETRY_COUNT, SUBSCRIBER
from app import config
from app.cli import main
from app.events.processes import topology
from app.factory import create_app
from tests import factories
from tests.settings import TEST_ENV
from tests.support.event_processes import EventProcess
from tests.support.rabbitmq import AMQP_URL, amqp_connection, wait_until

ACTIVITY = "auth.record_login_activity"


@pytest.fixture
def env(tmp_path) -> Iterator[dict[str, str]]:
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    env = {
        **TEST_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
        "EVENTS_URL": AMQP_URL,
        "EVENTS_PREFIX": f"test.{secrets.token_hex(4)}.",
        "EVENTS_RETRY_DELAYS": "0.2",
    }
    yield env
    with kombu.Connection(AMQP_URL) as connection:
        topology(config.load(env)).delete(connection)


def probe_url(process: EventProcess) -> str:
    process.wait_for_log("operation=probe.listen")
    return re.search(r"operation=probe.listen address=(\S+)", process.log_text()).group(1)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ready(base: str) -> tuple[int, dict]:
    status, body = get(f"{base}/health/ready")
    return status, json.loads(body)


def metric(base: str, name: str, labels: str) -> float:
    text = get(f"{base}/metrics")[1].decode()
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_worker_and_relay_report_ready_and_count_what_they_did(env, event_processes, faker):
    app = create_app(env)  # migrates the SQLite file
    worker = event_processes.start("worker", env, "--subscriber", ACTIVITY, "--port", "0")
    relay = event_processes.start("relay", env, "--port", "0")
    worker_probe, relay_probe = probe_url(worker), probe_url(relay)
    assert get(f"{worker_probe}/health/live") == (200, b'{"status": "ok"}')
    wait_until(lambda: ready(worker_probe)[0] == 200, 10, "the worker ready")
    assert ready(worker_probe)[1]["checks"] == {"database": "ok", "broker": "ok"}
    assert ready(relay_probe) == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"}})

    client = app.test_client()
    data = factories.registration(faker)
    assert client.post("/api/users", json=data).status_code == 201
    login = {"email": data["email"], "password": data["password"]}
    assert client.post("/api/auth/login", json=login).status_code == 200

    wait_until(lambda: metric(worker_probe, "events_consumed_total", f'subscriber="{ACTIVITY}"') == 1, 10)
    assert metric(relay_probe, "events_published_total", 'type="UserLoggedIn"') == 1
    assert metric(relay_probe, "events_published_total", 'type="UserRegistered"') == 1
    wait_until(lambda: metric(relay_probe, "events_outbox_depth", "") == 0, 5, "the outbox emptied")
    assert get(f"{worker_probe}/nowhere")[0] == 404


def test_a_worker_cut_off_from_the_broker_is_not_ready_until_it_is_back(env, event_processes, proxy):
    create_app(env)
    cut_off = {**env, "EVENTS_URL": proxy.url}
    worker = event_processes.start("worker", cut_off, "--subscriber", ACTIVITY, "--port", "0")
    probe = probe_url(worker)
    wait_until(lambda: ready(probe)[0] == 200, 10, "the worker ready")

    proxy.refusing = True
    proxy.cut()
    wait_until(lambda: ready(probe)[0] == 503, 10, "the worker unready")
    assert ready(probe)[1]["checks"] == {"database": "ok", "broker": "unavailable"}

    proxy.refusing = False
    wait_until(lambda: ready(probe)[0] == 200, 40, "the worker ready again")  # reconnects with backoff


def put_dead_letter(env: dict[str, str], subscriber: str, event_id: str) -> None:
    layout = topology(config.load(env))
    with kombu.Connection(AMQP_URL) as connection:
        layout.declare(connection)
        connection.Producer().publish(
            b'{"not": "read here"}',
            exchange="",
            routing_key=layout.error_queue(subscriber),
            message_id=event_id,
            type="UserLoggedIn",
            correlation_id="c-1",
            headers={ERROR_TYPE: "ValueError", ERROR_MESSAGE: "boom", RETRY_COUNT: 1, SUBSCRIBER: subscriber},
            content_type="application/json",
        )


def count(env: dict[str, str], queue: str) -> int:
    with kombu.Connection(AMQP_URL) as connection, connection.channel() as channel:
        return int(channel.queue_declare(queue, passive=True).message_count)


def test_dead_letters_are_listed_and_replayed_from_the_cli(env, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    layout = topology(config.load(env))
    runner = CliRunner()
    for command in ("list", "replay"):  # it only looks: nothing declared yet, nothing declared by it
        absent = runner.invoke(main, ["dead-letters", command, ACTIVITY])
        assert absent.exit_code == 0, absent.output
        assert f"{layout.error_queue(ACTIVITY)}: no such queue (no worker has run it)" in absent.output
    with kombu.Connection(AMQP_URL) as connection:
        layout.declare(connection)  # as a worker does
    empty = runner.invoke(main, ["dead-letters", "list", ACTIVITY])
    assert empty.exit_code == 0, empty.output
    assert f"{layout.error_queue(ACTIVITY)}: 0 message(s)" in empty.output

    put_dead_letter(env, ACTIVITY, "e-1")
    listed = runner.invoke(main, ["dead-letters", "list", ACTIVITY])
    assert listed.exit_code == 0, listed.output
    assert f"{layout.error_queue(ACTIVITY)}: 1 message(s)" in listed.output
    assert "UserLoggedIn id=e-1 correlation=c-1: ValueError after 1 retries: boom" in listed.output
    assert count(env, layout.error_queue(ACTIVITY)) == 1  # listing leaves them where they are

    replayed = runner.invoke(main, ["dead-letters", "replay", ACTIVITY])
    assert replayed.exit_code == 0, replayed.output
    assert "1 message(s) replayed" in replayed.output
    assert count(env, layout.error_queue(ACTIVITY)) == 0
    wait_until(lambda: count(env, layout.queue(ACTIVITY)) == 1, 5, "the letter back in its queue")

    unknown = runner.invoke(main, ["dead-letters", "list", "no.such"])
    assert unknown.exit_code == 2
    assert "no such worker subscriber: no.such" in unknown.output


def test_dead_letters_need_a_broker(monkeypatch):
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EVENTS_URL", raising=False)
    result = CliRunner().invoke(main, ["dead-letters", "list"])
    assert result.exit_code == 2
    assert "EVENTS_URL is not set" in result.output


def test_a_silent_probe_client_holds_up_neither_the_probes_nor_a_clean_stop(env, event_processes):
    create_app(env)
    worker = event_processes.start("worker", env, "--subscriber", ACTIVITY, "--port", "0")
    probe = probe_url(worker)
    address = urlsplit(probe)
    with socket.create_connection((address.hostname, address.port)):  # connects, says nothing
        assert get(f"{probe}/health/live")[0] == 200
        assert worker.stop() == 0  # SIGTERM: the process ends, the connection still open
    assert "operation=worker.stop" in worker.log_text()


def test_a_relay_whose_broker_is_away_is_not_ready_and_keeps_the_events(env, event_processes, proxy, faker):
    app = create_app(env)
    relay = event_processes.start("relay", {**env, "EVENTS_URL": proxy.url}, "--port", "0")
    probe = probe_url(relay)
    wait_until(lambda: ready(probe)[0] == 200, 10, "the relay ready")
    proxy.refusing = True
    proxy.cut()
    client = app.test_client()
    assert client.post("/api/users", json=factories.registration(faker)).status_code == 201
    wait_until(lambda: ready(probe)[0] == 503, 10, "the relay unready")
    assert ready(probe)[1]["checks"] == {"database": "ok", "broker": "unavailable"}
    assert metric(probe, "events_published_total", 'type="UserRegistered"') == 0
    proxy.refusing = False
    wait_until(lambda: ready(probe)[0] == 200, 40, "the relay ready again")  # its backoff
    wait_until(lambda: metric(probe, "events_published_total", 'type="UserRegistered"') == 1, 10)
