"""Every cache key and tag of the read caches (DESIGN §5): no key string is built anywhere else.

Keys carry no personal data: an email appears only as the SHA-256 of its lower-cased form, and a
collection page only as the SHA-256 of its canonical filter and page arguments.
"""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

from domain.users.queries import PageRequest, UserFilter

USER = "user"
USER_EMAIL = "user.email"
USER_COLLECTION = "user.collection"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def user(user_id: UUID) -> str:
    """Key of a user by id, and also the tag every entry derived from that user carries."""
    return f"user.{user_id}"


def user_tags(user_id: UUID) -> tuple[str, ...]:
    return (USER, user(user_id))


def user_email(email: str) -> str:
    """Key of a lookup by email (found or "not found"), and the tag that invalidates it."""
    return f"user.email.{_sha256(email.strip().lower())}"


def user_email_tags(email: str) -> tuple[str, ...]:
    return (USER, USER_EMAIL, user_email(email))


def user_collection(filter: UserFilter, page: PageRequest) -> str:
    """Key of one page of the user list: the hash of the sorted filters and the page."""
    arguments = {"email": filter.email, "confirmed": filter.confirmed, "page": page.page, "size": page.size}
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    return f"user.collection.{_sha256(canonical)}"


def user_collection_tags() -> tuple[str, ...]:
    return (USER_COLLECTION,)


def user_state(user_id: UUID) -> str:
    """Key of a user's session state (DESIGN §5: written by its owners only, never by tags)."""
    return f"user_state.{user_id}"
