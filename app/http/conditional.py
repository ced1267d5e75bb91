"""Conditional requests (RFC 9110 §13) beyond what flask-smorest does on its own: a 304 that
carries its validators, weak comparison for If-None-Match (so W/"x" matches "x"), lists and
`*`, and If-Match and If-None-Match on writes as a condition on the domain's versions, all
parsed strictly and within bounds (a malformed one is 400, never "absent")."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flask import Response, current_app, request
from werkzeug.exceptions import BadRequest

from adapters.i18n import N_
from domain.conditions import VersionCondition

VARY = "Accept, Authorization, Accept-Language"


@dataclass(frozen=True)
class CachePolicy:
    """Cache-Control of the per-user and admin representations (HTTP_CACHE_POLICY)."""

    user: str
    collection: str


# `revalidate` (the default): every cache may keep a copy, none may reuse it without asking, and
# shared caches none at all: a 304 is the cheap path, and no copy is replayed after a logout,
# a deletion or a change. `ttl`: the values of the user-cache-parity design, for deployments
# that accept up to 10 minutes of staleness; `s-maxage` lets a shared cache store a response
# to a request with Authorization (RFC 9111 §3.5) and serve it to the same token meanwhile.
CACHE_POLICIES = {
    "revalidate": CachePolicy(user="private, no-cache", collection="private, no-cache"),
    "ttl": CachePolicy(user="max-age=600, s-maxage=600", collection="max-age=300, s-maxage=600"),
}


def cache_policy() -> CachePolicy:
    """The app's policy (app.config["CACHE_POLICY"]), in a request."""
    policy: CachePolicy = current_app.config["CACHE_POLICY"]
    return policy


# Bumped whenever the user representation changes shape, so old validators stop matching.
REPRESENTATION = "r1"


def etag_of(resource_id: UUID, version: int) -> str:
    """The strong validator of a versioned resource (a user, a subscription)."""
    return f"{REPRESENTATION}-{resource_id.hex}-{version}"


def collection_etag(parts: Iterable[Any]) -> str:
    digest = hashlib.sha256(json.dumps(list(parts), default=str).encode()).hexdigest()
    return f"{REPRESENTATION}-c-{digest[:32]}"


def represent(
    payload: bytes | str, etag: str, cache_control: str, status: int = 200, **headers: str
) -> Response:
    """The response for a cacheable representation, or a 304 when If-None-Match matches it."""
    validators = {"ETag": f'"{etag}"', "Cache-Control": cache_control, "Vary": VARY}
    if request.method in ("GET", "HEAD") and none_match(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=validators)
    return Response(payload, status=status, mimetype="application/json", headers={**validators, **headers})


MAX_CONDITION = 2048  # characters of an If-Match or If-None-Match this service reads
MAX_TAGS = 32
MAX_VERSION_DIGITS = 18  # a version is a 64-bit integer
CONDITION_TOO_LONG = N_("If-Match or If-None-Match is longer than 2048 characters.")
TOO_MANY_TAGS = N_("If-Match or If-None-Match names more than 32 entity-tags.")
NOT_ENTITY_TAGS = N_('If-Match and If-None-Match must be * or a list of entity-tags such as "r1-…-3".')
# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text;
# a list (§5.6.1) may hold empty elements, and a tag may hold a comma.
_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
_ELEMENT = r'[ \t]*(?:(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"[ \t]*)?'
# What this service reads, published as the headers' pattern in the API's schema.
CONDITION_PATTERN = rf"^(?:[ \t]*\*[ \t]*|{_ELEMENT}(?:,{_ELEMENT}){{0,{MAX_TAGS - 1}}})$"
_CONDITION = re.compile(CONDITION_PATTERN)
_ANY_LIST = re.compile(rf"{_ELEMENT}(?:,{_ELEMENT})*")
_TAGS = re.compile(_TAG)


class MalformedCondition(BadRequest):
    """An If-Match or If-None-Match that is not `*` or a list of entity-tags: 400, never read
    as absent (a lone quote must not turn a conditional write into an unconditional one)."""


@dataclass(frozen=True)
class EntityTags:
    star: bool
    tags: tuple[tuple[bool, str], ...]  # (weak, opaque-tag without quotes)


def parse_condition(header: str) -> EntityTags:
    """`*` or a comma-separated list of entity-tags, at most MAX_CONDITION characters and
    MAX_TAGS tags; raises MalformedCondition otherwise."""
    if len(header) > MAX_CONDITION:
        raise MalformedCondition(CONDITION_TOO_LONG)
    if _CONDITION.fullmatch(header) is None:
        raise MalformedCondition(TOO_MANY_TAGS if _ANY_LIST.fullmatch(header) else NOT_ENTITY_TAGS)
    if header.strip(" \t") == "*":
        return EntityTags(True, ())
    # The whole header is a list of tags: its quoted strings are exactly the tags.
    return EntityTags(False, tuple((weak == "W/", opaque) for weak, opaque in _TAGS.findall(header)))


def none_match(condition: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches `etag`: weak comparison, lists and `*`; raises
    MalformedCondition for a malformed one."""
    if not condition:
        return False
    if condition == f'"{etag}"':  # the common case, without parsing
        return True
    parsed = parse_condition(condition)
    return parsed.star or any(opaque == etag for _weak, opaque in parsed.tags)


def write_condition(resource_id: UUID) -> VersionCondition:
    """The request's If-Match and If-None-Match as a condition on the resource's version."""
    headers = request.headers
    return version_condition(resource_id, headers.get("If-Match"), headers.get("If-None-Match"))


def version_condition(
    resource_id: UUID, if_match: str | None, if_none_match: str | None = None
) -> VersionCondition:
    """If-Match (strong comparison) and If-None-Match (weak) values as a condition on the
    resource's version (RFC 9110 §13.1.1-2): the handler checks it in its transaction.
    A tag of another resource or representation names no version, so it never matches."""
    match, must_exist = None, False
    if (raw := if_match) is not None:
        parsed = parse_condition(raw)
        must_exist = True
        if not parsed.star:
            match = _versions(resource_id, (opaque for weak, opaque in parsed.tags if not weak))
    none, must_not_exist = frozenset[int](), False
    if (raw := if_none_match) is not None:
        parsed = parse_condition(raw)
        must_not_exist = parsed.star
        none = _versions(resource_id, (opaque for _weak, opaque in parsed.tags))
    return VersionCondition(
        match=match, must_exist=must_exist, none_match=none, must_not_exist=must_not_exist
    )


def _versions(resource_id: UUID, opaque_tags: Iterable[str]) -> frozenset[int]:
    prefix = f"{REPRESENTATION}-{resource_id.hex}-"
    suffixes = (tag[len(prefix) :] for tag in opaque_tags if tag.startswith(prefix))
    return frozenset(
        int(suffix)
        for suffix in suffixes
        # Strong comparison: only the tag this service writes ("3", never "03") names a version.
        if suffix.isascii()
        and suffix.isdigit()
        and len(suffix) <= MAX_VERSION_DIGITS
        and suffix == str(int(suffix))
    )
