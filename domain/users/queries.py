"""Read-side messages of the users context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class UserFilter:
    email: str | None = None
    confirmed: bool | None = None


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    request: PageRequest


@dataclass(frozen=True)
class GetUser:
    user_id: UUID


@dataclass(frozen=True)
class ListUsers:
    filter: UserFilter
    page: PageRequest
