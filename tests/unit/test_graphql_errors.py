"""Every kind of domain error has a GraphQL code and a REST status: one added to the domain and
to one table only would be answered as an internal error over GraphQL."""

from __future__ import annotations

from app.graphql.errors import CODE_OF
from app.http.problems import STATUS_OF
from domain import errors


def kinds(base: type) -> set[type]:
    found = set()
    for kind in base.__subclasses__():
        found |= {kind, *kinds(kind)}
    return found


def covered(kind: type, table: dict) -> bool:
    return any(issubclass(kind, known) for known in table)


def test_every_domain_error_has_a_code_and_a_status():
    assert set(CODE_OF) == set(STATUS_OF)
    assert len(kinds(errors.DomainError)) >= 10
    assert [kind for kind in kinds(errors.DomainError) if not covered(kind, CODE_OF)] == []


def test_the_codes_are_distinct():
    assert len(set(CODE_OF.values())) == len(CODE_OF)
