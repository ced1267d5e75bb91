"""The composition root by concern: a test replaces a whole concern (here the caching one) at
once, and every handler and consumer then uses the replacement."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.caching.read_ahead import ReadAhead
from adapters.caching.read_through import ReadThrough
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.memory.tag_cache import InMemoryTagCache
from adapters.throttle import login_throttle
from app.wiring.caching import Caching
from domain.auth.commands import Login
from tests import factories


class RecordingStore(InMemoryUserStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.written: list = []

    def write(self, state):
        self.written.append(state)
        return super().write(state)


class OtherCaching(containers.DeclarativeContainer):
    config = providers.Configuration()
    read_cache = providers.Object("on")
    cache = providers.Singleton(InMemoryTagCache)
    states = providers.Singleton(RecordingStore)
    throttle = providers.Singleton(login_throttle, "memory", "other:")
    reads = providers.Singleton(ReadThrough, cache)
    read_ahead = providers.Singleton(ReadAhead)


def test_the_caching_concern_is_replaced_as_a_whole(container, faker):
    registration = factories.registration(faker)
    container.bus().handle(factories.register_user(faker, **registration))
    replacement = OtherCaching()
    container.caching.override(replacement)
    try:
        container.bus().handle(Login(email=registration["email"], password=registration["password"]))
    finally:
        container.caching.reset_override()
    assert [state.user_id for state in replacement.states().written] != []  # the login wrote here
    # What the rest of the container uses of the concern: everything but the stores' own clients
    # and its inputs.
    own = {"redis_client", "local_store", "durable_events", "registrations"}
    used = {name for name in Caching.providers if not name.startswith("_")} - own
    assert set(OtherCaching.providers) >= used
