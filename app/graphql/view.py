"""/api/graphql over HTTP: Strawberry's sync Flask view, with the REST API's HTTP semantics.

* A query over GET (or HEAD) that succeeded is a representation: a strong ETag of its body,
  `Cache-Control: private, no-cache` and REST's Vary, and 304 to a matching If-None-Match.
  Its body is what the principal may see now, so it is revalidated on every use.
* Everything else (a POST, any answer with errors) is `no-store`.
* A mutation over GET is 405 with `Allow: POST`; the request's own faults (no query, a batch
  when batching is off, a body that is not JSON) are problem+json like REST's.
* The GraphiQL page, when enabled, is served with its own files (app.graphql.graphiql)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import strawberry
from cross_web import FlaskHTTPRequestAdapter, HTTPException
from flask import Flask, Request, Response, current_app, g, request
from strawberry.flask.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from adapters.i18n import N_
from app.graphql import graphiql, schema
from app.graphql.errors import settled
from app.http.conditional import VARY, none_match
from app.http.locale import current_locale
from app.http.problems import problem

PATH = "/api/graphql"
REVALIDATE = "private, no-cache"
MAX_QUERY_STRING = 8192  # bytes of a GET's query string (the document, its variables)
MUTATION_OVER_GET = N_("A mutation must be sent with POST.")
# Strawberry's reasons for refusing a request, in the service's words (and so translated).
REASONS = {
    "Batching is not enabled": N_("This service takes one operation per request (batching is off)."),
    "Too many operations": N_("The batch has more operations than this service takes."),
    "No GraphQL query found in the request": N_("The request has no GraphQL query."),
    "Unable to parse request body as JSON": N_("The request body is not valid JSON."),
}
NOT_OPERATIONS = N_('The request body must be a JSON object such as {"query": "{ me { id } }"}.')
QUERY_STRING_TOO_LONG = N_("The query string is longer than 8192 bytes; send the operation in a POST.")


def init_app(app: Flask, settings: dict[str, Any]) -> None:
    """Serve /api/graphql with the limits of the `graphql` settings; the GraphiQL page and its
    files only where introspection is enabled (never by default in production)."""
    ide = settings["introspection"]
    endpoint = ServiceGraphQLView.as_view("graphql", schema=schema.build(settings), ide=ide)
    app.add_url_rule(PATH, view_func=endpoint)
    if ide:
        graphiql.init_app(app, PATH)


class _HeadAsGet(FlaskHTTPRequestAdapter):
    @property
    def method(self):  # HEAD is GET without the body (the server drops it)
        method = super().method
        return "GET" if method == "HEAD" else method


class ServiceGraphQLView(GraphQLView):
    methods = ["GET", "POST"]  # noqa: RUF012 (flask's View declares it so)
    request_adapter_class = _HeadAsGet

    def __init__(self, schema: strawberry.Schema, *, ide: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if ide else None, allow_queries_via_get=True)

    def is_request_allowed(self, request_adapter: Any) -> bool:
        return request_adapter.method in ("GET", "POST")

    def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page(PATH)

    def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            g.graphql_errors = True
            result.errors = [settled(error) for error in result.errors]
        return process_result(result)

    def dispatch_request(self) -> Response:
        if len(request.query_string) > MAX_QUERY_STRING:
            return problem(414, _(QUERY_STRING_TOO_LONG))
        if request.method == "POST" and (refusal := _unreadable(request.get_data())) is not None:
            return problem(400, _(refusal))
        try:
            response = self.run(request=request)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                return problem(405, _(MUTATION_OVER_GET), headers={"Allow": "POST"})
            reason = REASONS.get(error.reason)
            return problem(error.status_code, error.reason if reason is None else _(reason))
        if response.mimetype != "application/json":  # the IDE page
            return response
        if request.method in ("GET", "HEAD") and not g.get("graphql_errors"):
            return _representation(response)
        response.headers["Cache-Control"] = "no-store"
        return response


def _unreadable(body: bytes) -> str | None:
    """Why a POST body is not one operation or a list of them (Strawberry assumes it is);
    an empty body is left to Strawberry ("no query")."""
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return REASONS["Unable to parse request body as JSON"]
    operations = value if isinstance(value, list) else [value]
    return None if all(isinstance(item, dict) for item in operations) else NOT_OPERATIONS


def _representation(response: Response) -> Response:
    body = response.get_data()
    etag = "g-" + hashlib.sha256(body).hexdigest()[:32]
    validators = {"ETag": f'"{etag}"', "Cache-Control": REVALIDATE, "Vary": VARY}
    if none_match(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=validators)
    response.headers.update(validators)
    return response


def _(text: str) -> str:
    return current_app.extensions["container"].catalogs().gettext(text, current_locale())
