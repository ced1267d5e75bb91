"""The schema, built with the limits of the `graphql` settings (app.graphql.limits), the token
budget (MaxTokensLimiter: the parser stops at it), the kept documents (app.graphql.documents)
and, unless GRAPHQL_MAX_BATCH allows it, no batching (a JSON list of operations).

The fields under a list (a page's items) are plain values, with no resolver of their own, so
depth, aliases and tokens bound the resolvers a request runs."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import strawberry
from flask import g
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.graphql import OperationType

from app import config
from app.graphql import limits
from app.graphql.documents import DocumentCache, ValidDocuments
from app.graphql.mutations import Mutation
from app.graphql.queries import Query


class ServiceSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Not Strawberry's traceback for every error: a refusal is an answer, and what is a bug
        the view logs as it masks it (app.graphql.errors.settled)."""


class MutationsRun(SchemaExtension):
    """Says in the request (`g.graphql_mutation`) that a mutation ran: one that succeeded went
    through the database (the outage log, app.http.problems)."""

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_type is OperationType.MUTATION:
            g.graphql_mutation = True
        yield


def build(settings: dict[str, Any]) -> strawberry.Schema:
    """The schema with the limits of the `graphql` settings (app.config)."""
    # Factories: each operation gets its own extensions (they hold its execution context).
    extensions: list[Any] = [
        partial(MaxTokensLimiter, max_token_count=settings["max_tokens"]),
        partial(DocumentCache, documents=ValidDocuments()),
        partial(AddValidationRules, limits.rules(settings)),
        MutationsRun,
    ]
    batching = {"max_operations": settings["max_batch"]} if settings["max_batch"] else None
    config_ = StrawberryConfig(batching_config=batching)  # type: ignore[arg-type]
    return ServiceSchema(query=Query, mutation=Mutation, extensions=extensions, config=config_)


def sdl() -> str:
    """The served schema in SDL (docs/schema.graphql holds it; `user-service graphql-schema`
    prints it); its limits are not part of it."""
    return build(config.load({})["graphql"]).as_str() + "\n"
