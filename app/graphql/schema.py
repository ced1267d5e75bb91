"""The schema, and the limits every operation is checked against before anything runs:

* depth (QueryDepthLimiter's rule): how deeply fields nest; the service's own operations need 2;
* aliases (MaxAliasesLimiter's rule): the one way to ask for one field many times (users(page: 1)
  and users(page: 2) must have aliases), so with depth it bounds how many resolvers run;
* tokens (MaxTokensLimiter): the budget of an operation's size, checked while parsing (the
  parser stops at the limit instead of building a huge document);
* introspection (DisableIntrospection's rule) off unless enabled (never by default in production);
* batching (a JSON list of operations) refused unless GRAPHQL_MAX_BATCH allows it.

No type holds a list of another (no per-item resolver), so these bound the work per request.
Parsed and validated documents are cached per process: a client's few operations are parsed
once, not on every request."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import BREAK, GraphQLError, SelectionSetNode, ValidationContext, Visitor, visit
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig

from app.graphql.mutations import Mutation
from app.graphql.queries import Query

DOCUMENTS_CACHED = 256


class ServiceSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Not Strawberry's traceback for every error: a refusal is an answer, and what is a bug
        the view logs as it masks it (app.graphql.errors.settled)."""


def build(settings: dict[str, Any]) -> strawberry.Schema:
    """The schema with the limits of the `graphql` settings (app.config)."""
    # The limits' rules are made once: ValidationCache keys on the rule classes, and the
    # limiters' own extensions (QueryDepthLimiter, MaxAliasesLimiter) make new classes for every
    # operation, so no validation would ever be found in the cache.
    rules: list[type[ASTValidationRule]] = [
        _depth_rule(settings["max_depth"]),
        aliases_rule(settings["max_aliases"]),
    ]
    if not settings["introspection"]:
        rules.append(NoSchemaIntrospectionCustomRule)  # what DisableIntrospection adds
    # Factories: each operation gets its own extensions (they hold its execution context).
    extensions: list[Any] = [
        partial(MaxTokensLimiter, max_token_count=settings["max_tokens"]),
        partial(ParserCache, maxsize=DOCUMENTS_CACHED),  # the caches themselves are per process
        partial(AddValidationRules, rules),
        partial(ValidationCache, maxsize=DOCUMENTS_CACHED),
    ]
    batching = {"max_operations": settings["max_batch"]} if settings["max_batch"] else None
    config = StrawberryConfig(batching_config=batching)  # type: ignore[arg-type]
    return ServiceSchema(query=Query, mutation=Mutation, extensions=extensions, config=config)


class _EmptySelection(Visitor):
    found = False

    def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> Any:
        if not node.selections:
            self.found = True
            return BREAK
        return None


def _depth_rule(max_depth: int) -> type[ASTValidationRule]:
    """QueryDepthLimiter's rule, which cannot measure an empty selection set (graphql-core 3.3
    parses `{ }`; the rule fails on it, and stops measuring the rest): such a document is refused."""
    measure = depth_rule(max_depth, should_ignore=None)

    class DepthRule(measure):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            empty = _EmptySelection()
            visit(context.document, empty)
            if not empty.found:
                super().__init__(context)
                return
            ASTValidationRule.__init__(self, context)
            context.report_error(GraphQLError("A selection set must select at least one field."))

    return DepthRule


def sdl() -> str:
    """The schema in SDL (docs/schema.graphql holds it; `user-service graphql-schema` prints it)."""
    return strawberry.Schema(query=Query, mutation=Mutation).as_str() + "\n"
