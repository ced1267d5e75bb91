"""/api/graphql over HTTP: Strawberry's sync Flask view, with the REST API's HTTP semantics.

* A query over GET (or HEAD) that succeeded is a representation: a strong ETag of its body,
  `Cache-Control: private, no-cache` and REST's Vary, and 304 to a matching If-None-Match
  (app.http.conditional's `represent`). Its body is what the principal may see now, so it is
  revalidated on every use; one that names the session (`me`) is never stored, as REST's /me.
* Everything else (a POST, any answer with errors) is `no-store`.
* A mutation over GET is 405 with `Allow: POST`; the request's own faults (no query, a batch
  when batching is off, a body or a GET's variables that are not JSON objects within the
  service's bounds) are problem+json like REST's.
* In a batch (GRAPHQL_MAX_BATCH), an operation the view cannot run (no query, an unknown
  operation name) is that operation's error, not the whole request's: the others may have run.
* The GraphiQL page, when enabled, is served with its own files (app.graphql.graphiql)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import strawberry
from cross_web import FlaskHTTPRequestAdapter, HTTPException
from flask import Flask, Request, Response, current_app, g, request
from graphql import GraphQLError
from strawberry.flask.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from adapters.i18n import N_
from app.graphql import graphiql, schema
from app.graphql.answers import storable
from app.graphql.errors import settled
from app.http.conditional import CACHE_POLICIES, represent
from app.http.locale import current_locale
from app.http.problems import DETAIL_OF, problem
from app.http.request_body import check_json

PATH = "/api/graphql"
REVALIDATE = CACHE_POLICIES["revalidate"].user
MAX_QUERY_STRING = 8192  # bytes of a GET's query string (the document, its variables)
MUTATION_OVER_GET = N_("A mutation must be sent with POST.")
NOT_OPERATIONS = N_('The request body must be a JSON object such as {"query": "{ me { id } }"}.')
QUERY_STRING_TOO_LONG = N_("The query string is longer than 8192 bytes; send the operation in a POST.")
# Strawberry's reasons for refusing a request, in the service's words (and so translated).
REASONS = {
    "Batching is not enabled": N_("This service takes one operation per request (batching is off)."),
    "Too many operations": N_("The batch has more operations than this service takes."),
    "No GraphQL query found in the request": N_("The request has no GraphQL query."),
    "Unable to parse request body as JSON": N_("The request body is not valid JSON."),
    "Unsupported content type": NOT_OPERATIONS,
    "Not Found": DETAIL_OF[404],  # the page, where introspection is off
}


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

    def encode_json(self, data: object) -> str:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))  # as REST's bodies

    def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page(PATH)

    def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if not g.get("graphql_batch"):
                raise
            reason = REASONS.get(error.reason)
            return ExecutionResult(data=None, errors=[GraphQLError(_(reason) if reason else error.reason)])

    def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            g.graphql_errors = True
            result.errors = [settled(error) for error in result.errors]
        return process_result(result)

    def dispatch_request(self) -> Response:
        refusal = _unreadable()
        if refusal is not None:
            return refusal
        try:
            response = self.run(request=request)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                return problem(405, _(MUTATION_OVER_GET), headers={"Allow": "POST"})
            reason = REASONS.get(error.reason)
            return problem(error.status_code, error.reason if reason is None else _(reason))
        finally:  # only a mutation that succeeded went through the database (app.http.problems)
            g.database_answered = bool(g.get("graphql_mutation")) and not g.get("graphql_errors")
        if response.mimetype != "application/json":  # the IDE page
            return response
        if request.method in ("GET", "HEAD") and storable():
            body = response.get_data()
            return represent(body, "g-" + hashlib.sha256(body).hexdigest()[:32], REVALIDATE)
        response.headers["Cache-Control"] = "no-store"
        return response


def _unreadable() -> Response | None:
    """The problem with a request Strawberry would not read safely: a GET's query string too
    long, its variables or extensions JSON beyond the service's bounds (as a body's are:
    app.http.request_body), a POST body that is not one operation or a list of them."""
    if len(request.query_string) > MAX_QUERY_STRING:
        return problem(414, _(QUERY_STRING_TOO_LONG))
    if request.method != "POST":
        for name in ("variables", "extensions"):
            if value := request.args.get(name):
                check_json(value.encode())  # raises a 400 for JSON too deep or numbers too long
        return None
    body = request.get_data()
    if not body:
        return None  # Strawberry: "no query"
    try:
        value = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return problem(400, _(REASONS["Unable to parse request body as JSON"]))
    g.graphql_batch = isinstance(value, list)
    operations = value if isinstance(value, list) else [value]
    return None if all(isinstance(item, dict) for item in operations) else problem(400, _(NOT_OPERATIONS))


def _(text: str) -> str:
    return current_app.extensions["container"].catalogs().gettext(text, current_locale())
