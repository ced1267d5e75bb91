"""Unit tests: the domain through the real composition root, on in-memory adapters only."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from adapters.clock import FrozenClock
from app import config
from app.containers import Container
from tests.settings import TEST_ENV
from tests.support.accounts import Account, register


class Recorder:
    """Subscribes to every event the bus delivers."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def container(clock: FrozenClock):
    container = Container()
    container.config.from_dict(config.load(TEST_ENV))
    with container.clock.override(providers.Object(clock)):
        yield container


@pytest.fixture
def bus(container):
    return container.bus()


@pytest.fixture
def outbox(container) -> list:
    return container.mailer().outbox


@pytest.fixture
def account(bus, outbox, faker) -> Account:
    """A registered user and its password (`user, password = account`); the outbox emptied."""
    return register(bus, outbox, faker)


@pytest.fixture
def events(container) -> Recorder:
    from domain.messages import Event

    recorder = Recorder()
    container.event_bus().subscribe(Event, recorder)
    return recorder
