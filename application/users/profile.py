"""Reading, changing and deleting an account."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from application.session_state.states import deleted_state, identity_of, sessions_of
from application.users.support import (
    EMAIL_TAKEN,
    issue_token,
    load_keeping_an_admin,
    load_user,
    send_token_mail,
    verify_old_password,
)
from domain.auth.model import EndReason
from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.session_state.model import UserState
from domain.users import rules
from domain.users.commands import (
    DeleteUser,
    UpdateUser,
)
from domain.users.events import EmailChanged, PasswordChanged, UserDeleted, UserUpdated
from domain.users.model import User
from domain.users.queries import GetUser, ListUsers, Page
from domain.users.tokens import TokenPurpose

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.mail import Mailer
    from ports.password_hasher import PasswordHasher
    from ports.session_state import UserStateStore
    from ports.token_generator import TokenGenerator
    from ports.unit_of_work import ReadUnitOfWork, UnitOfWork


def update_user(
    cmd: UpdateUser,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    tokens: TokenGenerator,
    clock: Clock,
    mailer: Mailer,
    states: UserStateStore,
) -> User:
    """A new email or status reaches UserState before this returns; a new password ends every
    session but the one the change was made from."""
    email = rules.check(email=cmd.email, initials=cmd.initials, password=cmd.password)
    # argon2 is slow on purpose: check the current password and hash the new one before the
    # write transaction, then write only if the user is still at the version that was read.
    with uow:
        current = load_user(uow, cmd.user_id, condition=cmd.condition)
    if email is not None or cmd.password is not None:  # even the same email: the rule is stated, not guessed
        verify_old_password(hasher, current, cmd.old_password)
    password_hash = hasher.hash(cmd.password) if cmd.password is not None else None
    with uow:
        # Changed since: a conditional request's condition is checked again (a lost race is
        # its 412); an unconditional one is told to read again.
        user = load_user(uow, cmd.user_id, lock=True, condition=cmd.condition)
        if user.version != current.version:
            raise ConcurrentUpdate()
        if email is not None and email != user.email and uow.users.get_by_email(email) is not None:
            raise AlreadyExists(EMAIL_TAKEN)
        now = clock.now()
        change = user.update(email=email, initials=cmd.initials, password_hash=password_hash)
        token = None
        if change.previous_email is not None:
            token = issue_token(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
            user.record(
                EmailChanged(
                    user_id=user.id,
                    email=user.email,
                    previous_email=change.previous_email,
                    occurred_at=now,
                    locale=cmd.locale,
                )
            )
        if change.previous_email is not None or change.password_changed:
            # A reset mailed before (perhaps to the old address) must not undo this change.
            uow.tokens.revoke(user.id, TokenPurpose.RESET_PASSWORD, now)
        sessions = None
        if change.password_changed:
            sessions = uow.sessions.get(user.id, now, lock=True)
            if sessions is not None:
                sessions.end_all(now, EndReason.PASSWORD_CHANGED, keep=cmd.session_id)
                uow.sessions.save(sessions)
            user.record(
                PasswordChanged(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale)
            )
        # Published and written even when nothing changed: a request that changes nothing may
        # be the retry of one answered 503 whose cache writes have not landed
        # (app.acknowledgement), and its answer must hold on every worker.
        user.record(
            UserUpdated(
                user_id=user.id,
                email=user.email,
                previous_email=change.previous_email,
                previous_email_unknown=email is not None and not change.any,
                occurred_at=now,
                locale=cmd.locale,
            )
        )
        uow.commit()
        state = UserState(user.id, identity=identity_of(user))
        states.write(state if sessions is None else replace(state, sessions=sessions_of(sessions, now)))
    if token is not None:
        send_token_mail(mailer, user.email, "confirm_email", cmd.locale, token)
    return user


def delete_user(cmd: DeleteUser, *, uow: UnitOfWork, clock: Clock, states: UserStateStore) -> None:
    """The account's sessions go with it; its UserState becomes a tombstone at once."""
    with uow:
        user = load_keeping_an_admin(uow, cmd.user_id, could_remove=True, condition=cmd.condition)
        user.record(
            UserDeleted(user_id=user.id, email=user.email, occurred_at=clock.now(), locale=cmd.locale)
        )
        uow.users.remove(user)
        uow.commit()
        states.write(deleted_state(user.id, user.email))


def get_user(query: GetUser, *, uow: UnitOfWork) -> User:
    with uow:
        return load_user(uow, query.user_id)


def list_users(query: ListUsers, *, uow: ReadUnitOfWork) -> Page[User]:
    """An exact email filter names at most one account (emails are unique): it is answered by
    the lookup by email, whose cache entry each write to that email invalidates, and the other
    filters are applied to that one user; any other filter reads a page of the list."""
    filter, page = query.filter, query.page
    with uow:
        if filter.email is None:
            return uow.users.list(filter, page)
        user = uow.users.get_by_email(rules.normalise_email(filter.email))
    matches = [] if user is None or filter.confirmed not in (None, user.confirmed) else [user]
    return Page(items=matches[page.offset : page.offset + page.size], total=len(matches), request=page)
