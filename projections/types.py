"""Column types for read models: amounts and quantities as scaled integers (exact sums in SQL
on SQLite and PostgreSQL alike), timestamps as UTC; and the SQL functions reports share."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Date, DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

# The periods reports add up by.
INTERVALS = ("day", "week", "month")


class Scaled(TypeDecorator[Decimal]):
    """A Decimal stored as an integer number of 10^-scale units. A value that does not fit the
    scale exactly is a bug upstream, not something to round quietly."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int, min_places: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.min_places = scale if min_places is None else min_places
        self.factor = Decimal(10) ** scale
        self._read = _units_reader(scale, self.min_places)

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * self.factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def fast_bind_processor(self, dialect: Any) -> Callable[[Any], Any] | None:
        """What `bind_processor` gives, in one call instead of three (see engine.py)."""
        if self.impl_instance.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        factor, scale = self.factor, self.scale

        def process(value: Any) -> int | None:  # process_bind_param, without a method call
            if value is None:
                return None
            scaled = Decimal(value) * factor
            if scaled != scaled.to_integral_value():
                raise ValueError(f"{value} has more than {scale} decimal places")
            return int(scaled)

        return process

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return self._read(value)

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        """`_read` itself, where the integer type converts nothing (SQLite, psycopg): a
        TypeDecorator otherwise calls `process_result_value` through a wrapper of its own
        (1.3 µs a value against 0.8; a report reads hundreds)."""
        if self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype):
            return super().result_processor(dialect, coltype)
        return self._read

    def text_processor(self) -> Callable[[Any], str]:
        """`str(process_result_value(units))` straight from the stored units (an integer; a
        sum of them is a numeric on PostgreSQL) by integer division, without a Decimal: a
        report that answers many amounts as text pays for each value (0.3 µs instead of 1.2)."""
        scale, min_places, factor = self.scale, self.min_places, 10**self.scale
        template, exact = f"%d.%0{scale}d", min_places == scale > 0

        def text(units: Any) -> str:
            if units < 0:
                return "-" + text(-units)
            if exact:  # (divmod and %d take a numeric's Decimal as they take an int)
                return template % divmod(units, factor)
            whole, fraction = divmod(int(units), factor)
            places = f"{fraction:0{scale}d}".rstrip("0").ljust(min_places, "0")
            return f"{whole}.{places}" if places else str(whole)

        return text


def _units_reader(scale: int, min_places: int) -> Callable[[Any], Decimal | None]:
    """The Decimal of stored units (an integer; a sum of them is a numeric on PostgreSQL)
    with the places the value needs, never fewer than `min_places`: 15, 2.5, 100.00. Made by
    moving the point, the trailing zeros dropped in integers (a tenth of the time of a
    division, a quantize and a normalize; a report reads hundreds of these)."""
    make = Decimal
    if min_places == scale:  # (no trailing zeros to drop: an amount)
        exponent = -scale

        def exact(value: Any) -> Decimal | None:
            return None if value is None else make(int(value)).scaleb(exponent)

        return exact

    # All the places it may drop at once (a whole quantity, the common case); else the zeros
    # it has, fewer than those.
    droppable, fewest = 10 ** (scale - min_places), -min_places

    def read(value: Any) -> Decimal | None:
        if value is None:
            return None
        units = int(value)
        if units % droppable == 0:
            return make(units // droppable).scaleb(fewest)
        places = scale
        while units % 10 == 0:
            units //= 10
            places -= 1
        return make(units).scaleb(-places)

    return read


def Amount() -> Scaled:
    return Scaled(2)


def Quantity() -> Scaled:
    return Scaled(4, min_places=0)


def UnitPrice() -> Scaled:
    return Scaled(6, min_places=2)


def Percent() -> Scaled:
    return Scaled(4, min_places=0)


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value  # type: ignore[no-any-return]

    def fast_bind_processor(self, dialect: Any) -> Callable[[Any], Any] | None:
        """What `bind_processor` gives on SQLite (the text SQLAlchemy's DATETIME writes:
        `2026-11-27 09:22:06.976433`), in one call instead of three (see engine.py)."""
        if dialect.name != "sqlite":
            return None

        def process(value: Any) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC)
            # value.isoformat(" ", "microseconds")[:26], without asking the zone for an offset
            # only to cut it off (0.8 -> 0.5 µs)
            return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )

        return process

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class period_start_of(GenericFunction[date]):
    """`period_start` in SQL: the first day of the week (Monday) or month of a date column,
    or the day itself; so that a report adds its rows up per period in the database and
    reads a row per period, however many days of rows each holds."""

    type = Date()
    inherit_cache = True
    # (the interval is part of the statement cache's key: a week is not a month)
    _traverse_internals = [
        *GenericFunction._traverse_internals,
        ("interval", InternalTraversal.dp_string),
    ]

    def __init__(self, day: Any, interval: str) -> None:
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        self.interval = interval
        super().__init__(day)


@compiles(period_start_of, "sqlite")
def _period_start_sqlite(element: period_start_of, compiler: Any, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    modifiers = {"day": "", "week": ", '-6 days', 'weekday 1'", "month": ", 'start of month'"}
    return f"date({day}{modifiers[element.interval]})"


@compiles(period_start_of)
def _period_start(element: period_start_of, compiler: Any, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    if element.interval == "day":
        return f"CAST({day} AS DATE)"
    return f"CAST(date_trunc('{element.interval}', {day}) AS DATE)"


_S = TypeVar("_S")


def made_once(owner: Any, name: str, shape: Hashable, build: Callable[[], _S]) -> _S:
    """The statement `build` makes for a shape of query, made once and kept in `owner.info`
    (a read model's table or metadata) under `name`, its values bound as parameters when it
    runs: for a report's small reads, building a query with SQLAlchemy cost more than
    running it (the ledger's account totals 0.5-0.6 ms a call to build, 0.3 to run)."""
    made: dict[Hashable, _S] = owner.info.setdefault(name, {})
    found = made.get(shape)
    if found is None:
        found = made[shape] = build()
    return found
