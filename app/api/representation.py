"""The user representation {id, email, initials, confirmed, roles} and its cached form.

A cached user starts with its ready HTTP representation and ETag, then the record the
repository rebuilds the aggregate from:

    format | >B ETag length | >I body length | ETag (ASCII) | body (JSON, UTF-8) | record (JSON)

so the fast path answers a hit, or a 304, by slicing bytes: no JSON parsing, no schema. The
format names the representation and this layout: an entry written by another version of the
service (a deploy under way) is not served, but replaced.
"""

from __future__ import annotations

import json
import struct

from adapters.caching.users import RecordCodec
from app.http.conditional import REPRESENTATION, etag_of
from domain.users.model import User

# Bump the number when the layout or the record changes; REPRESENTATION covers the body.
FORMAT = f"{REPRESENTATION}/1:".encode()
_HEAD = struct.Struct(">BI")
_START = len(FORMAT)
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
        etag = etag_of(user.id, user.version).encode()
        body = user_body(user)
        return FORMAT + _HEAD.pack(len(etag), len(body)) + etag + body + _RECORD.encode(user)

    def decode(self, value: bytes) -> User:
        if not value.startswith(FORMAT):
            raise ValueError("a cached user in another format")
        etag_length, body_length = _HEAD.unpack_from(value, _START)
        return _RECORD.decode(value[_START + _HEAD.size + etag_length + body_length :])


def representation(value: bytes) -> tuple[str, bytes] | None:
    """The ETag and body stored in a cached user; None for an entry in another format."""
    if not value.startswith(FORMAT):
        return None
    etag_length, body_length = _HEAD.unpack_from(value, _START)
    start = _START + _HEAD.size
    body_start = start + etag_length
    return value[start:body_start].decode("ascii"), value[body_start : body_start + body_length]
