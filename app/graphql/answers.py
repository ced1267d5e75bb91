"""What the view may make of an answer, as the resolvers find out (kept in the request's `g`)."""

from __future__ import annotations

from flask import g


def never_store() -> None:
    """The answer names the session (`me`): no cache keeps it, as REST's /me."""
    g.graphql_no_store = True


def storable() -> bool:
    """Whether a GET's answer may be kept (and revalidated): no errors, nothing per session."""
    return not g.get("graphql_errors") and not g.get("graphql_no_store")
