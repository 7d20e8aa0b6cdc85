"""Shapes shared by every resource: command answers, pages, and the base for request bodies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, Select, func, select

T = TypeVar("T", bound=BaseModel)


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently ignored, and so is text that
    could be recorded but never stored in a read model."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        check_storable(value)
        return value


def check_storable(value: Any) -> None:
    """PostgreSQL text cannot hold NUL, and no database holds a lone surrogate (JSON allows
    both): recorded, such text would stop the read models at that event for good."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode text (it has a lone surrogate)") from None
    elif isinstance(value, list | tuple):
        for item in value:
            check_storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)


class NoBody(Body):
    """The body of an action that takes none: absent or `{}`; anything else is rejected."""


# What the read models can hold: amounts as 64-bit integer cents, percentages to four places.
# Without these bounds a value the domain accepts could be recorded and then not projected.
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=2)]
Percentage = Annotated[Decimal, Field(decimal_places=4)]


# The largest OFFSET a database's 64-bit integer holds; past it SQLite fails, not the caller.
MAX_OFFSET = 2**63 - 1


def _storable_instant(value: datetime) -> datetime:
    try:
        value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    return value


# An instant stored or compared in UTC: 0001-01-01T00:00+00:01 has no UTC counterpart.
Instant = Annotated[datetime, AfterValidator(_storable_instant)]


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CommandAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: UUID
    version: int
    position: int = Field(
        description="notification id of the last event recorded; pass it as "
        "?min_position= to read your own write"
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(
    conn: Connection,
    query: Select[Any],
    model: type[T],
    limit: int,
    offset: int,
    shape: Callable[[Any], dict[str, Any]] = dict,
    counted: Select[Any] | None = None,
) -> dict[str, Any]:
    """A page of `query`'s rows as `model`s, with how many there are in all: the rows of
    `counted` if given (the same rows without what is joined only to be shown)."""
    counted = (query if counted is None else counted).order_by(None)
    total = conn.execute(select(func.count()).select_from(counted.subquery())).scalar()
    rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
    return {
        "items": [model.model_validate(shape(r)) for r in rows],
        "total": total or 0,
        "limit": limit,
        "offset": offset,
    }


class PageParams(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
