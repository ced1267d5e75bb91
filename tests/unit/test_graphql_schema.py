"""The schema's kept documents (app.graphql.documents): a document sent again is neither parsed
nor validated again, and the limits still apply; a refused document, or a long one, is not
kept; documents the depth rule cannot measure are refused as requests, not failures."""

from __future__ import annotations

import pytest
import strawberry.schema.schema as strawberry_schema

from app import config
from app.graphql import documents, schema


@pytest.fixture
def validations(monkeypatch) -> list[object]:
    """Every document Strawberry validates from now on."""
    seen: list[object] = []
    validate = strawberry_schema.validate_document

    def counting(graphql_schema, document, rules):
        seen.append(document)
        return validate(graphql_schema, document, rules)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    return seen


def built(**settings: str):
    return schema.build(config.load({"APP_ENV": "test", **settings})["graphql"])


def test_a_document_sent_again_is_validated_once(validations):
    service = built()
    for _ in range(3):
        result = service.execute_sync("{ first: __typename }")
        assert not result.errors and result.data == {"first": "Query"}
    assert len(validations) == 1


def test_a_refused_document_is_not_kept_and_is_refused_every_time(validations):
    service = built(GRAPHQL_MAX_ALIASES="2")
    for _ in range(2):
        refused = service.execute_sync("{ a: __typename b: __typename c: __typename }")
        assert refused.data is None and "3 aliases found. Allowed: 2" in refused.errors[0].message
    assert len(validations) == 2


def test_a_long_document_is_not_kept(validations):
    service = built()
    long = "{ __typename }" + " " * documents.MAX_TEXT
    for _ in range(2):
        assert service.execute_sync(long).data == {"__typename": "Query"}
    assert len(validations) == 2


def test_the_least_recently_used_document_goes_first():
    kept = documents.ValidDocuments(size=2)
    first, second, third = (object() for _ in range(3))
    kept.put("a", first)  # type: ignore[arg-type]
    kept.put("b", second)  # type: ignore[arg-type]
    assert kept.get("a") is first  # a is now the most recent
    kept.put("c", third)  # type: ignore[arg-type]
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (first, None, third)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{ ...Missing }", "Unknown fragment 'Missing'."),
        ("{ me { ...Missing } }", "Unknown fragment 'Missing'."),
        ("{ }", "A selection set must select at least one field."),
    ],
)
def test_what_the_depth_rule_cannot_measure_is_refused_as_a_request(document, message):
    result = built().execute_sync(document)
    assert result.data is None
    assert [error.message for error in result.errors] == [message]
    assert all(error.original_error is None for error in result.errors)
