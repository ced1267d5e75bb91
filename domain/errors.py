"""Domain exceptions: a refused command raises one; the app maps each kind to HTTP once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.messages import Message


class DomainError(Exception):
    """Base class. `message` is what the person who sent the command is told."""

    default = Message("The request could not be processed.")

    def __init__(self, message: Message | str | None = None) -> None:
        message = self.default if message is None else message
        self.message = message if isinstance(message, Message) else Message(message)
        super().__init__(self.message.text.format(**self.message.params))


class NotFound(DomainError):
    default = Message("The resource was not found.")


class AlreadyExists(DomainError):
    default = Message("The resource already exists.")


class Conflict(DomainError):
    """The resource's current state does not allow the change."""

    default = Message("The request conflicts with the current state of the resource.")


class StaleVersion(DomainError):
    """The caller's expected version (an If-Match ETag) is not the current one."""

    default = Message("The resource has changed since you last read it.")


class ConcurrentUpdate(DomainError):
    """Another transaction changed the aggregate between our read and our write."""

    default = Message("The resource was changed by another request; read it again and retry.")


class InvalidToken(DomainError):
    default = Message("The token is invalid, expired or already used.")


class Unauthenticated(DomainError):
    """No valid credentials: a missing, forged or expired access token, a session that ended."""

    default = Message("Authentication is required: the access token is missing, invalid or expired.")


class InvalidCredentials(Unauthenticated):
    # One message for an unknown email, a wrong password and a disabled account.
    default = Message("The email or password is incorrect.")


class PermissionDenied(DomainError):
    default = Message("You are not allowed to do this.")


class Throttled(DomainError):
    default = Message("Too many requests; try again in {seconds} seconds.")

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(Message(self.default.text, {"seconds": retry_after}))


class Busy(DomainError):
    """The service cannot take this request's work now (every password-hashing turn is taken);
    the client should try again shortly."""

    default = Message("The service is busy; try again in a few seconds.")
    retry_after = 2


class InvalidInput(DomainError):
    """One or more fields break a domain rule; `errors` maps each field to its messages."""

    default = Message("The input is invalid.")

    def __init__(self, errors: Mapping[str, Sequence[Message]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__()
