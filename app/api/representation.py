"""The user representation {id, email, initials, confirmed, roles} and its cached form.

A cached user starts with its ready HTTP representation and ETag, then the record the
repository rebuilds the aggregate from:

    >B ETag length | >I body length | ETag (ASCII) | body (JSON, UTF-8) | record (JSON)

so the fast path answers a hit, or a 304, by slicing bytes: no JSON parsing, no schema.
"""

from __future__ import annotations

import json
import struct

from adapters.cache.users import RecordCodec
from app.http.conditional import user_etag
from domain.users.model import User

_HEAD = struct.Struct(">BI")
_RECORD = RecordCodec()


def user_payload(user: User) -> dict:
    return {
        "id": str(user.id),
        "email": user.email,
        "initials": user.initials,
        "confirmed": user.confirmed,
        "roles": sorted(user.roles),
    }


def user_body(user: User) -> bytes:
    return json.dumps(user_payload(user), ensure_ascii=False).encode()


class RepresentationCodec:
    """The UserCodec the app gives the read cache."""

    def encode(self, user: User) -> bytes:
        etag = user_etag(user.id, user.version).encode()
        body = user_body(user)
        return _HEAD.pack(len(etag), len(body)) + etag + body + _RECORD.encode(user)

    def decode(self, value: bytes) -> User:
        etag_length, body_length = _HEAD.unpack_from(value)
        return _RECORD.decode(value[_HEAD.size + etag_length + body_length :])


def representation(value: bytes) -> tuple[str, bytes]:
    """The ETag and body stored in a cached user."""
    etag_length, body_length = _HEAD.unpack_from(value)
    start = _HEAD.size + etag_length
    return value[_HEAD.size : start].decode("ascii"), value[start : start + body_length]
