"""A command that changes nothing still writes the caches: it may be the retry of one answered
503 (app.acknowledgement) whose cache writes have not landed, sent to another worker, and its
answer must hold there and everywhere. Each test drops the first command's cache writes (as a
cache out of reach would), checks that the cache then holds what it replaced, and retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from domain.auth.commands import Login, Logout
from domain.auth.queries import Authenticate
from domain.errors import Unauthenticated
from domain.users.commands import ChangeUserRoles, ChangeUserStatus, UpdateUser
from domain.users.queries import GetUser, ListUsers, PageRequest, UserFilter


@contextmanager
def cache_writes_dropped(container) -> Iterator[None]:
    """Invalidations and session-state writes reach nothing while inside."""
    cache, states = container.caching.cache(), container.caching.states()
    cache.invalidate = lambda *tags: None
    states.write = lambda state: frozenset()
    try:
        yield
    finally:
        del cache.invalidate, states.write


def authenticates(bus, access_token: str) -> bool:
    try:
        bus.handle(Authenticate(access_token))
    except Unauthenticated:
        return False
    return True


def roles_in_state(container, user_id) -> frozenset[str]:
    state = container.caching.states().read(user_id, reader="test")
    return frozenset(state.roles.value.roles)


def test_a_retried_update_replaces_the_cached_user(container, bus, account):
    user, _ = account
    assert bus.handle(GetUser(user.id)).initials == user.initials  # cached
    with cache_writes_dropped(container):
        bus.handle(UpdateUser(user_id=user.id, initials="QQ"))
    assert bus.handle(GetUser(user.id)).initials == user.initials  # what the retry must replace

    bus.handle(UpdateUser(user_id=user.id, initials="QQ"))  # changes nothing in the database
    assert bus.handle(GetUser(user.id)).initials == "QQ"


def emails_found(bus, email: str) -> list[str]:
    """The admin list's exact email filter: the cached lookup by email."""
    page = bus.handle(ListUsers(UserFilter(email=email), PageRequest(1, 20)))
    return [user.email for user in page.items]


def test_a_retried_email_change_clears_the_lookup_of_the_old_address(container, bus, account):
    user, password = account
    assert emails_found(bus, user.email) == [user.email]  # cached
    change = UpdateUser(user_id=user.id, email="moved@example.com", old_password=password)
    with cache_writes_dropped(container):
        bus.handle(change)
    assert emails_found(bus, user.email) == [user.email]  # the old address still finds it

    bus.handle(change)  # changes nothing in the database: which address it left is not known
    assert emails_found(bus, user.email) == []
    assert emails_found(bus, "moved@example.com") == ["moved@example.com"]


def test_a_retried_logout_ends_the_session_in_the_state(container, bus, account):
    user, password = account
    pair = bus.handle(Login(email=user.email, password=password))
    assert authenticates(bus, pair.access_token)  # the whole state cached
    with cache_writes_dropped(container):
        bus.handle(Logout(user_id=user.id, session_id=pair.session_id))
    assert authenticates(bus, pair.access_token)  # the state still holds the session

    bus.handle(Logout(user_id=user.id, session_id=pair.session_id))
    assert not authenticates(bus, pair.access_token)


def test_a_retried_roles_change_reaches_the_state_and_the_cached_user(container, bus, account):
    user, password = account
    bus.handle(Login(email=user.email, password=password))
    assert bus.handle(GetUser(user.id)).roles == {"user"}  # cached
    admin_roles = frozenset({"user", "admin"})
    with cache_writes_dropped(container):
        bus.handle(ChangeUserRoles(user_id=user.id, roles=admin_roles))
    assert roles_in_state(container, user.id) == {"user"}
    assert bus.handle(GetUser(user.id)).roles == {"user"}

    bus.handle(ChangeUserRoles(user_id=user.id, roles=admin_roles))
    assert roles_in_state(container, user.id) == admin_roles
    assert bus.handle(GetUser(user.id)).roles == admin_roles


def test_a_retried_disable_ends_the_sessions_in_the_state(container, bus, account):
    user, password = account
    pair = bus.handle(Login(email=user.email, password=password))
    assert authenticates(bus, pair.access_token)  # the whole state cached
    with cache_writes_dropped(container):
        bus.handle(ChangeUserStatus(user_id=user.id, status="disabled"))
    assert authenticates(bus, pair.access_token)

    bus.handle(ChangeUserStatus(user_id=user.id, status="disabled"))
    assert not authenticates(bus, pair.access_token)
