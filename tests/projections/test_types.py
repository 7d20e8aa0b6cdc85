"""The read models' column types: what a batch writes with a type's own quick conversion is
what SQLAlchemy's conversion would have written, to the byte."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest
from sqlalchemy import Uuid
from sqlalchemy.dialects import postgresql, sqlite

from projections.engine import _bind_processor
from projections.types import Amount, Percent, Quantity, UnitPrice, UtcDateTime

DIALECTS = [sqlite.dialect(), postgresql.dialect()]


def standard(type_, dialect):  # type: ignore[no-untyped-def]
    return type_.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)


def times() -> list[datetime | None]:
    rng = random.Random(5)
    found: list[datetime | None] = [None]
    for _ in range(300):
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(-(10**9), 10**9),
            microseconds=rng.choice([0, rng.randrange(10**6)]),
        )
        zone = timezone(timedelta(minutes=rng.choice([0, 180, -300, 330])))
        found += [moment, moment.astimezone(zone), moment.replace(tzinfo=None)]
    found.append(datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC))
    return found


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_time_is_written_as_sqlalchemy_writes_it(dialect) -> None:  # type: ignore[no-untyped-def]
    column = UtcDateTime()
    fast, slow = _bind_processor(column, dialect), standard(column, dialect)

    for value in times():
        assert (fast or (lambda v: v))(value) == slow(value), value


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("make", [Amount, Quantity, UnitPrice])
def test_an_amount_is_written_as_sqlalchemy_writes_it(dialect, make) -> None:  # type: ignore[no-untyped-def]
    column = make()
    fast, slow = _bind_processor(column, dialect), standard(column, dialect)
    rng = random.Random(3)
    values = [None, 0, 7, Decimal("0"), Decimal("-0.01"), "12.5"] + [
        Decimal(rng.randrange(-(10**12), 10**12)).scaleb(-rng.randrange(0, column.scale + 1))
        for _ in range(300)
    ]

    for value in values:
        assert fast(value) == slow(value), value
    with pytest.raises(ValueError, match="decimal places"):
        fast(Decimal(1).scaleb(-column.scale - 1))


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("make", [Amount, Quantity, UnitPrice, Percent])
def test_an_amount_is_read_as_its_type_reads_it(dialect, make) -> None:  # type: ignore[no-untyped-def]
    """The quick conversion of a stored integer (`Scaled.result_processor`, and
    `process_result_value`) gives the very Decimal of the plain arithmetic — divided by its
    scale, with the places the value needs and never fewer than min_places: value, digits
    and exponent."""
    column = make()
    fast = column.dialect_impl(dialect).result_processor(dialect, None)
    quantum = Decimal(1).scaleb(-column.scale)

    def plain(units: int) -> Decimal:
        amount = (Decimal(units) / column.factor).quantize(quantum)
        exponent = amount.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        return amount.quantize(Decimal(1).scaleb(-max(column.min_places, -exponent)))

    rng = random.Random(13)
    units = [0, 1, -1, 10, -10, 10**column.scale, -(10**column.scale), 10**15, 1500, 250000]
    units += [rng.randrange(-(10**14), 10**14) for _ in range(300)]
    units += [rng.randrange(-100, 100) * 10 ** rng.randrange(0, 9) for _ in range(300)]

    assert fast(None) is None
    for value in units:
        slow = plain(value)
        # (a sum of integers arrives as a numeric on PostgreSQL)
        for given in (value, Decimal(value)):
            assert fast(given).as_tuple() == slow.as_tuple(), value
            assert column.process_result_value(given, dialect).as_tuple() == slow.as_tuple()


@pytest.mark.parametrize("make", [Amount, Quantity, UnitPrice, Percent])
def test_an_amount_reads_as_the_text_sqlalchemy_reads(make) -> None:  # type: ignore[no-untyped-def]
    column = make()
    fast = column.text_processor()
    rng = random.Random(11)
    units = [0, 1, -1, 5, -5, 10**column.scale, -(10**column.scale), 10**15, 1500, 250000]
    units += [rng.randrange(-(10**14), 10**14) for _ in range(300)]
    units += [rng.randrange(-100, 100) * 10 ** rng.randrange(0, 8) for _ in range(300)]

    for value in units:
        slow = str(column.process_result_value(value, sqlite.dialect()))
        # (a sum of integers arrives as a numeric on PostgreSQL)
        assert fast(value) == fast(Decimal(value)) == slow, value


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_an_id_is_written_as_sqlalchemy_writes_it(dialect) -> None:  # type: ignore[no-untyped-def]
    column = Uuid()
    fast, slow = _bind_processor(column, dialect), standard(column, dialect)
    rng = random.Random(7)
    ids = [None, UUID(int=0), UUID(int=(1 << 128) - 1), uuid5(NAMESPACE_URL, "tekil")]
    ids += [UUID(int=rng.getrandbits(128)) for _ in range(300)]

    for value in ids:
        assert (fast or (lambda v: v))(value) == slow(value), value


def test_a_period_starts_in_sql_where_it_starts_in_python(database_url: str) -> None:
    """`period_start_of` (the reports' grouping by week and month in the database) gives the
    first day `period_start` gives, on both databases, for days across years, leap days and
    every weekday; each interval its own (a statement cached for months is not reused for
    weeks)."""
    from sqlalchemy import Column, Date, MetaData, Table, insert, select

    from projections.db import make_engine
    from projections.receivables import period_start
    from projections.types import INTERVALS, period_start_of

    days = [date(2023, 12, 25) + timedelta(days=n) for n in range(0, 800, 3)]
    table = Table("period_days", MetaData(), Column("day", Date, primary_key=True))
    engine = make_engine(database_url, writer=True)
    try:
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(insert(table), [{"day": d} for d in days])
            for interval in [*INTERVALS, *INTERVALS]:
                got = dict(
                    conn.execute(select(table.c.day, period_start_of(table.c.day, interval))).all()
                )
                assert got == {d: period_start(d, interval) for d in days}, interval
    finally:
        engine.dispose()
