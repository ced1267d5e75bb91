# Over 200 lines: the one composition root; its helpers build the subscriber maps it binds.
"""The composition root: the one place that chooses adapters (with the containers of app.wiring,
one per concern) and binds the handlers to them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from dependency_injector import containers, providers

from adapters.blinker_bus import BlinkerEventBus
from adapters.caching import users as user_caches
from adapters.caching.owned_state import OwnedGroups
from adapters.clock import SystemClock
from adapters.device_tokens import HmacDeviceTokens
from adapters.i18n import Catalogs
from adapters.jwt_tokens import JwtAccessTokens
from adapters.mail.background import BackgroundMailer
from adapters.mail.mailers import LoggingMailer, RecordingMailer, SmtpMailer
from adapters.security import Argon2PasswordHasher, SecretsTokenGenerator
from app.acknowledgement import AcknowledgingBus, command_types
from app.http.payments import PaymentCallbacks
from app.http.user_representation import RepresentationCodec
from app.wiring.caching import Caching
from app.wiring.events import (
    IN_PROCESS,
    WORKER,
    FirstAttempt,
    by_name,
    merged,
    placed,
    placement,
    subscriber_name,
)
from app.wiring.storage import Storage
from application.auth import handlers as auth
from application.messagebus import MessageBus
from application.subscriptions import handlers as subscriptions
from application.users import handlers as users
from domain.auth.commands import RefreshToken
from domain.auth.model import Lifetimes
from domain.session_state.model import owned_groups
from domain.subscriptions.plans import Plan, Plans
from domain.users.commands import RequestPasswordReset, ResendConfirmation


def bound(handler: Callable, ports: Mapping[str, providers.Provider]) -> providers.Callable:
    """A provider calling `handler(message, **ports it names)`. Factories among the ports are
    resolved on every call, so each command gets a fresh unit of work."""
    wanted = inspect.signature(handler).parameters
    return providers.Callable(handler, **{name: p for name, p in ports.items() if name in wanted})


def handler_map(handlers: Mapping[type, Callable], ports: Mapping[str, providers.Provider]) -> dict:
    return {message: bound(handler, ports).provider for message, handler in handlers.items()}


def subscriber_map(
    ports: Mapping[str, providers.Provider],
    subscribers: Mapping[type, list[Callable]],
    durable: bool = False,
) -> providers.Dict:
    """`durable`: the subscribers that workers run too are first attempts here (FirstAttempt)."""
    return providers.Dict(
        {
            event: providers.List(*(_delivery_of(h, ports, durable) for h in hs))
            for event, hs in subscribers.items()
        }
    )


def _delivery_of(handler: Callable, ports: Mapping[str, providers.Provider], durable: bool) -> Any:
    delivery = bound(handler, consumer_ports(handler, ports)).provider
    if durable and WORKER in placement(handler):
        # A provider (not an object holding one), so that the container's copy binds its ports.
        return providers.Factory(FirstAttempt, subscriber_name(handler), delivery)
    return delivery


def consumer_ports(consumer: Callable, ports: Mapping[str, providers.Provider]) -> dict:
    """The ports as this event consumer gets them: the state store limited to the groups it
    owns (none, for most: they may only read it)."""
    name = f"{consumer.__module__}.{consumer.__qualname__}"
    guarded = providers.Factory(OwnedGroups, ports["states"], owned_groups(consumer), name)
    return {**ports, "states": guarded}


def in_process_subscribers(
    ports: Mapping[str, providers.Provider],
    plain: Mapping[type, list[Callable]],
    invalidating: Mapping[type, list[Callable]],
) -> dict[str, providers.Dict]:
    """The subscribers the event bus of this process runs, for each `_delivery` key."""
    return {
        f"{cache}-{mode}": subscriber_map(
            ports,
            placed(invalidating if cache == "on" else plain, IN_PROCESS, mode == "durable"),
            durable=mode == "durable",
        )
        for cache in ("on", "off")
        for mode in ("durable", "local")
    }


def worker_handler_map(
    ports: Mapping[str, providers.Provider], named: Mapping[str, tuple[Callable, tuple[str, ...]]]
) -> providers.Dict:
    return providers.Dict(
        {
            name: bound(handler, consumer_ports(handler, ports)).provider
            for name, (handler, _) in named.items()
        }
    )


def _delivery(read_cache: str, durable: bool) -> str:
    return f"{read_cache}-{'durable' if durable else 'local'}"


def build_plans(config: Mapping[str, Mapping[str, Any]]) -> Plans:
    return Plans(
        {
            name: Plan(
                name,
                timedelta(days=plan["period_days"]),
                plan["price"],
                plan["currency"],
                frozenset(plan["features"]),
            )
            for name, plan in config.items()
        }
    )


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    catalogs = providers.Singleton(Catalogs)
    clock = providers.Singleton(SystemClock)
    tokens = providers.Singleton(SecretsTokenGenerator)
    hasher = providers.Singleton(
        Argon2PasswordHasher,
        time_cost=config.argon2.time_cost,
        memory_cost=config.argon2.memory_cost,
        parallelism=config.argon2.parallelism,
        concurrency=config.argon2.concurrency,
    )
    mailer = providers.Selector(
        config.mail.backend,
        log=providers.Singleton(LoggingMailer, catalogs),
        record=providers.Singleton(RecordingMailer, catalogs),
        smtp=providers.Singleton(
            BackgroundMailer,
            providers.Factory(
                SmtpMailer,
                catalogs,
                host=config.mail.smtp.host,
                port=config.mail.smtp.port,
                sender=config.mail.smtp.sender,
                username=config.mail.smtp.username,
                password=config.mail.smtp.password,
                starttls=config.mail.smtp.starttls,
            ),
        ),
    )

    # The event bus is declared first: the units of work publish on it, and its subscribers
    # (added below, once storage and caching exist) get units of work that do. The cycle
    # (bus -> subscribers -> unit of work -> bus) is broken by `bound`: the bus holds
    # delegates, and a subscriber's unit of work is made only when an event arrives.
    event_bus = providers.Singleton(BlinkerEventBus)
    storage = providers.Container(Storage, config=config, events=event_bus)
    caching = providers.Container(
        Caching, config=config.cache, durable_events=config.events.durable, registrations=config.registrations
    )
    lifetimes = providers.Singleton(
        Lifetimes,
        access=providers.Callable(_seconds, config.auth.access_ttl),
        refresh=providers.Callable(_seconds, config.auth.refresh_ttl),
    )
    access = providers.Singleton(
        JwtAccessTokens, config.auth.secret, providers.Callable(_seconds, config.auth.access_ttl)
    )
    devices = providers.Singleton(HmacDeviceTokens, config.auth.secret)
    plans = providers.Singleton(build_plans, config.subscriptions.plans)
    payment_callbacks = providers.Singleton(PaymentCallbacks, config.subscriptions.webhook_secret)

    # A consumer publishes what its own change caused through its unit of work, as handlers do.
    _subscriber_ports = {
        "mailer": mailer,
        "clock": clock,
        "cache": caching.cache,
        "states": caching.states,
        "plans": plans,
        "uow": storage.uow,
    }
    # Which subscribers run in this process (all of them without a broker): app.wiring.events.
    _subscribers = merged(users.EVENT_HANDLERS, auth.EVENT_HANDLERS, subscriptions.EVENT_HANDLERS)
    _invalidating = merged(_subscribers, user_caches.EVENT_HANDLERS)
    event_bus.add_kwargs(
        subscribers=providers.Selector(
            providers.Callable(_delivery, caching.read_cache, config.events.durable),
            **in_process_subscribers(_subscriber_ports, _subscribers, _invalidating),
        ),
    )
    # The worker's subscribers by name (`user-service worker`), each with its ports but the unit
    # of work, which the worker gives per message (it records the event in the inbox).
    worker_subscribers = by_name(placed(_invalidating, WORKER, durable=True))
    worker_handlers = worker_handler_map(_subscriber_ports, worker_subscribers)
    del _subscriber_ports, _invalidating, _subscribers

    _codec = providers.Singleton(RepresentationCodec)
    _cached_read_uow = providers.Factory(
        user_caches.CachedReadUnitOfWork, storage.read_uow, caching.reads, _codec
    )
    # The HTTP hot path's reads of users by id (app.http.hot_path), cached unless switched off.
    user_entries = providers.Singleton(
        user_caches.UserEntries,
        providers.Selector(caching.read_cache, on=caching.reads, off=providers.Object(None)),
        _codec,
        storage.read_uow.provider,
    )
    read_uow = providers.Selector(caching.read_cache, on=_cached_read_uow, off=storage.read_uow)

    _ports: dict[str, Any] = {
        "hasher": hasher,
        "tokens": tokens,
        "clock": clock,
        "mailer": mailer,
        "states": caching.states,
        "access": access,
        "throttle": caching.throttle,
        "registrations": caching.throttle,
        "devices": devices,  # the same store and limiter: ports.registration_limit
        "lifetimes": lifetimes,
        "plans": plans,
    }
    _commands = command_types(users.COMMAND_HANDLERS, auth.COMMAND_HANDLERS, subscriptions.COMMAND_HANDLERS)
    _bus = providers.Singleton(
        MessageBus,
        providers.Dict(
            {
                # A users command may read first through the read cache (`read_uow`), then write.
                **handler_map(users.COMMAND_HANDLERS, {**_ports, "uow": storage.uow, "read_uow": read_uow}),
                **handler_map(auth.COMMAND_HANDLERS, {**_ports, "uow": storage.uow}),
                **handler_map(subscriptions.COMMAND_HANDLERS, {**_ports, "uow": storage.uow}),
                **handler_map(users.QUERY_HANDLERS, {"uow": read_uow}),
                # Authentication and the activity log read the database itself, not the read cache.
                **handler_map(auth.QUERY_HANDLERS, {**_ports, "uow": storage.read_uow}),
                **handler_map(subscriptions.QUERY_HANDLERS, {**_ports, "uow": storage.read_uow}),
            }
        ),
    )
    # Commands are acknowledged once the caches show what they did (app.acknowledgement); the
    # two that only issue a token by mail change nothing cached; a refresh only renews.
    bus = providers.Singleton(
        AcknowledgingBus,
        _bus,
        providers.List(caching.cache, caching.states),
        wait=config.cache.repair_wait,
        commands=_commands,
        cache_neutral=(RequestPasswordReset, ResendConfirmation),
        unwaited=(RefreshToken,),
    )
    del _ports, _commands, _bus
