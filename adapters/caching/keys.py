"""Every cache key and tag of the read caches (DESIGN §5): no key string is built anywhere else.

Keys carry no personal data: an email appears only as the SHA-256 of its lower-cased form, and a
collection page only as the SHA-256 of its canonical filter and page arguments.

On Redis Cluster every key and tag version lives in a *slot group* (decision 0008: a hash tag
the Redis adapter puts in front of the name), so that what one script touches is in one slot:
`slot_group` says which, `home_group` where a tag's version lives.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from uuid import UUID

from domain.users.queries import PageRequest, UserFilter

USER = "user"
USER_EMAIL = "user.email"
USER_COLLECTION = "user.collection"
# Tags carried by entries of every slot group: versioned in each group (decision 0008).
SHARED_TAGS = frozenset({USER, USER_EMAIL})
SLOT_GROUPS = tuple(f"{group:02x}" for group in range(256))


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


def slot_group(name: str) -> str:
    """The slot group (one of SLOT_GROUPS) of a key, or of a tag's home (`home_group`): that of
    the item it names, the text after its last dot (a user's id, an email's hash), so that a
    user's entry, its tag and its session state share one; the pages of the list and their
    tag `user.collection` share the collection's."""
    item = USER_COLLECTION if name.startswith(USER_COLLECTION) else name.rpartition(".")[2]
    return SLOT_GROUPS[zlib.crc32(item.encode()) & 0xFF]


def home_group(tag: str) -> str | None:
    """The one slot group whose entries may record `tag` (its version lives there alone), or
    None for a tag any entry may record, whose version every group keeps a copy of: the shared
    tags, and any tag that is not one of the service's per-item names (`user.<item>`)."""
    if tag in SHARED_TAGS or not tag.startswith("user."):
        return None
    return slot_group(tag)
