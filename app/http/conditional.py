"""Conditional requests (RFC 9110 §13) beyond what flask-smorest does on its own: a 304 that
carries its validators, weak comparison for If-None-Match (so W/"x" matches "x"), lists and
`*`, and an If-Match that is optional and maps onto the domain's expected versions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flask import Response, current_app, request
from werkzeug.http import parse_etags

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


def none_match(condition: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches `etag`: weak comparison, lists and `*`."""
    if not condition:
        return False
    if condition == f'"{etag}"':  # the common case, without parsing
        return True
    tags = parse_etags(condition)
    return tags.star_tag or tags.contains_weak(etag)


def expected_versions(resource_id: UUID) -> frozenset[int] | None:
    """The versions If-Match allows for this resource; None when there is no If-Match (or `*`,
    which the existence check already answers). Weak tags never match (strong comparison);
    a header naming none of its tags gives the empty set, which no version matches,
    so the command answers 412, but only after it has checked the input and the resource."""
    tags = request.if_match
    if not tags or tags.star_tag:
        return None
    prefix = f"{REPRESENTATION}-{resource_id.hex}-"
    suffixes = (
        tag[len(prefix) :] for tag in tags.as_set(include_weak=False) if tag and tag.startswith(prefix)
    )  # a malformed header may parse to None
    return frozenset(int(suffix) for suffix in suffixes if suffix.isascii() and suffix.isdigit())
