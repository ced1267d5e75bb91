"""Backends for the EventBus contract suite: BlinkerEventBus, the one adapter, with its subscribers
given each way the code gives them:

* "callables": plain functions in the `subscribers` mapping;
* "providers": as the composition root binds handlers (app/containers.py `subscriber_map`): a
  `providers.Dict` of `providers.List`s of `providers.Callable(handler, **ports).provider`,
  resolved, so that each subscriber is a provider whose `provides` is the handler;
* "subscribed": an empty bus, then one `subscribe()` per subscriber, in the mapping's order.

Each backend's `make(subscribers, **options)` builds a bus; options are BlinkerEventBus's
(attempts, on_dead_letter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from dependency_injector import providers

from adapters.blinker_bus import BlinkerEventBus

Subscribers = Mapping[type, Iterable[Callable[[Any], None]]]


@dataclass
class Backend:
    name: str
    make: Callable[..., BlinkerEventBus]


def _callables(subscribers: Subscribers, **options: Any) -> BlinkerEventBus:
    return BlinkerEventBus(subscribers, **options)


def _providers(subscribers: Subscribers, **options: Any) -> BlinkerEventBus:
    bound = providers.Dict(
        {
            event: providers.List(*(providers.Callable(handler).provider for handler in handlers))
            for event, handlers in subscribers.items()
        }
    )
    return BlinkerEventBus(bound(), **options)


def _subscribed(subscribers: Subscribers, **options: Any) -> BlinkerEventBus:
    bus = BlinkerEventBus({}, **options)
    for event, handlers in subscribers.items():
        for handler in handlers:
            bus.subscribe(event, handler)
    return bus


BUILDERS = {"callables": _callables, "providers": _providers, "subscribed": _subscribed}


@pytest.fixture(params=list(BUILDERS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return Backend(request.param, BUILDERS[request.param])
