"""A write's preconditions on the version it changes: HTTP's If-Match and If-None-Match
(RFC 9110 §13.1.1-2), as versions, so that the handler checks them in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import StaleVersion


@dataclass(frozen=True)
class VersionCondition:
    """`match`: one of these versions must be current (None: no If-Match, or `*`); `must_exist`:
    there must be a current version (any If-Match); `none_match`: none of these may be current;
    `must_not_exist` (If-None-Match: *): there must be no current version. The default holds
    for anything: an unconditional write."""

    match: frozenset[int] | None = None
    must_exist: bool = False
    none_match: frozenset[int] = frozenset()
    must_not_exist: bool = False

    def check(self, version: int) -> None:
        """Raises StaleVersion unless the condition holds with `version` current."""
        if self.must_not_exist or version in self.none_match:
            raise StaleVersion()
        if self.match is not None and version not in self.match:
            raise StaleVersion()

    def check_missing(self) -> None:
        """Raises StaleVersion when the condition needed a current version and there is none
        (the caller answers "not found" otherwise)."""
        if self.must_exist or self.match is not None:
            raise StaleVersion()


UNCONDITIONAL = VersionCondition()
