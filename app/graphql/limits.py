"""The limits every operation is checked against before anything runs, as validation rules made
once per schema (so a validated document can be kept: app.graphql.documents):

* depth (QueryDepthLimiter's rule): how deeply fields nest; the service's own operations need 2;
* aliases (MaxAliasesLimiter's rule): the one way to ask for one field many times (users(page: 1)
  and users(page: 2) must have aliases), so with depth it bounds how many resolvers run;
* introspection (DisableIntrospection's rule) off unless enabled (never by default in production).

The token budget is checked while parsing (MaxTokensLimiter: the parser stops at the limit)."""

from __future__ import annotations

from typing import Any

from graphql import (
    BREAK,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    SelectionSetNode,
    ValidationContext,
    Visitor,
    visit,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

EMPTY_SELECTION = "A selection set must select at least one field."


def rules(settings: dict[str, Any]) -> list[type[ASTValidationRule]]:
    """The rules of the `graphql` settings (app.config)."""
    made: list[type[ASTValidationRule]] = [
        _depth_rule(settings["max_depth"]),
        aliases_rule(settings["max_aliases"]),
    ]
    if not settings["introspection"]:
        made.append(NoSchemaIntrospectionCustomRule)  # what DisableIntrospection adds
    return made


class _Unmeasurable(Visitor):
    """What QueryDepthLimiter's rule cannot measure: an empty selection set (graphql-core 3.3
    parses `{ }`; the rule fails on it with max() of nothing) and a spread of a fragment the
    document does not define (it fails looking it up). Either would end the rule midway, the
    rest unmeasured, and be answered as an internal error."""

    def __init__(self) -> None:
        super().__init__()
        self.empty = False
        self.defined: set[str] = set()
        self.spread: set[str] = set()

    def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> Any:
        if not node.selections:
            self.empty = True
            return BREAK
        return None

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_args: Any) -> None:
        self.defined.add(node.name.value)

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: Any) -> None:
        self.spread.add(node.name.value)


def _depth_rule(max_depth: int) -> type[ASTValidationRule]:
    """QueryDepthLimiter's rule, for the documents it can measure: an empty selection set is
    refused here; a spread of an unknown fragment is left to graphql-core's KnownFragmentNames."""
    measure = depth_rule(max_depth, should_ignore=None)

    class DepthRule(measure):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            found = _Unmeasurable()
            visit(context.document, found)
            if not found.empty and found.spread <= found.defined:
                super().__init__(context)
                return
            ASTValidationRule.__init__(self, context)
            if found.empty:
                context.report_error(GraphQLError(EMPTY_SELECTION))

    return DepthRule
