"""The GraphQL schema's per-process caches: a document sent again is not validated again, and
the limits still apply (their rules must be the same classes on every operation for that, as
the validation cache's key holds them)."""

from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache

from app import config
from app.graphql import schema


def test_a_document_sent_again_is_validated_once_and_the_limits_still_apply():
    built = schema.build(config.load({"APP_ENV": "test", "GRAPHQL_MAX_ALIASES": "2"})["graphql"])
    validations = _get_validate_cache(schema.DOCUMENTS_CACHED)  # the process's cache, by size
    query = "{ first: __typename }"
    before = validations.cache_info()
    for _ in range(3):
        result = built.execute_sync(query)
        assert not result.errors and result.data == {"first": "Query"}
    after = validations.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)

    aliases = "{ a: __typename b: __typename c: __typename }"
    for _ in range(2):  # refused again from the cache
        refused = built.execute_sync(aliases)
        assert refused.data is None and "3 aliases found. Allowed: 2" in refused.errors[0].message
