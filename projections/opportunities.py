"""Opportunities, and the pipeline: per stage and owner, and the forecast by closing month."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
    literal_column,
    select,
    type_coerce,
)

from domain.crm.opportunities import OPEN_STAGES, Opportunity, Stage
from domain.values import round_money
from projections.engine import Batch, Projection
from projections.explain import Contribution, Explanation, attach, event_name, pointer
from projections.types import Amount, Percent, UtcDateTime


class Opportunities(Projection):
    name = "opportunities"
    version = 7  # v7: opened_at indexed (the list, newest first)
    handles = (
        Opportunity.Opened,
        Opportunity.StageChanged,
        Opportunity.Won,
        Opportunity.Lost,
    )

    def define_tables(self) -> None:
        self.table(
            "opportunities",
            Column("id", Uuid, primary_key=True),
            Column("customer_id", Uuid, nullable=False, index=True),
            Column("title", String(200), nullable=False),
            Column("amount", Amount(), nullable=False),
            Column("currency", String(3), nullable=False),
            Column("expected_close", Date),
            Column("expected_close_month", String(7), index=True),
            Column("owner", String(100), nullable=False, index=True),
            Column("stage", String(20), nullable=False, index=True),
            Column("probability", Percent(), nullable=False),
            Column("weighted_amount", Amount(), nullable=False),
            Column("lead_id", Uuid),
            Column("opened_at", UtcDateTime, nullable=False, index=True),
            Column("closed_at", UtcDateTime),
            Column("lost_reason", Text),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
            # The events that last set the amount, the stage (and with it the probability),
            # and so the weighted amount: what a pipeline figure is explained by.
            Column("amount_position", Integer, nullable=False),
            Column("amount_event", String(40), nullable=False),
            Column("stage_position", Integer, nullable=False),
            Column("stage_event", String(40), nullable=False),
            Column("weighted_position", Integer, nullable=False),
            Column("weighted_event", String(40), nullable=False),
        )
        # What is open, added up as opportunities open, move and close: the pipeline reads
        # these rows, not every open opportunity (a business that leaves deals open has more
        # of them each year). Per stage, owner and currency (a handful of rows), and per
        # expected-close month ('' for none), currency and owner for the forecast; a month
        # whose deals all moved on keeps a row with count 0, which the partial indexes leave
        # out.
        open_ = self.table("open", *_totals_columns("stage", "owner", "currency"))
        _live_index(open_, "live", "owner", "stage", "currency")
        forecast = self.table("forecast", *_totals_columns("month", "currency", "owner"))
        _live_index(forecast, "live", "owner", "month", "currency")
        # What was won and lost, added up as opportunities close (per owner, so that the
        # pipeline of one owner is as cheap): the closed ones grow with the years, and the
        # pipeline should not add them all up when asked.
        closed = self.table("closed", *_totals_columns("stage", "owner", "currency"))
        _live_index(closed, "live", "owner", "stage", "currency")
        # The same figures for every owner at once, keyed by exactly the groups the pipeline
        # answers (`ALL_OWNERS`): the whole business's pipeline reads as many rows as it
        # lists, not the rows of every owner (274 forecast rows for 54 groups at a million
        # events, and more each year salespeople are added).
        for name, field in ALL_OWNERS.items():
            everyone = self.table(name, *_totals_columns(field, "currency"))
            _live_index(everyone, "live", field, "currency")

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        opportunities = self["opportunities"]
        key = event.originator_id
        stamp = {"version": event.originator_version, "position": position}
        # Every event handled here sets the stage and probability, so the weighted amount.
        name = event_name(type(event))
        stamp.update(
            stage_position=position,
            stage_event=name,
            weighted_position=position,
            weighted_event=name,
        )
        match event:
            case Opportunity.Opened():
                row = batch.insert(
                    opportunities,
                    id=key,
                    customer_id=event.customer_id,
                    title=event.title,
                    amount=event.amount,
                    currency=event.currency,
                    expected_close=event.expected_close,
                    expected_close_month=event.expected_close.isoformat()[:7]
                    if event.expected_close
                    else None,
                    owner=event.owner,
                    stage=event.stage,
                    probability=event.probability,
                    weighted_amount=weigh(event.amount, event.probability),
                    lead_id=event.lead_id,
                    opened_at=event.timestamp,
                    amount_position=position,
                    amount_event=name,
                    **stamp,
                )
                self._add_open(batch, row, 1)
            case Opportunity.StageChanged():
                row = batch.get(opportunities, key)
                if row is None:
                    return
                self._add_open(batch, row, -1)
                row = batch.update(
                    opportunities,
                    key,
                    stage=event.stage,
                    probability=event.probability,
                    weighted_amount=weigh(row["amount"], event.probability),
                    **stamp,
                )
                self._add_open(batch, row, 1)
            case Opportunity.Won():
                self._close(
                    batch,
                    key,
                    stage=Stage.WON.value,
                    probability=Decimal(100),
                    closed_at=event.timestamp,
                    **stamp,
                )
            case Opportunity.Lost():
                self._close(
                    batch,
                    key,
                    stage=Stage.LOST.value,
                    probability=Decimal(0),
                    closed_at=event.timestamp,
                    lost_reason=event.reason,
                    **stamp,
                )

    def _close(self, batch: Batch, key: Any, *, stage: str, **values: Any) -> None:
        """Close the opportunity, and move its figures into the closed totals."""
        opportunities = self["opportunities"]
        row = batch.get(opportunities, key)
        if row is None:
            return
        # (Only an open opportunity can be won or lost: domain/crm/opportunities.py.)
        self._add_open(batch, row, -1)
        amount = row["amount"]
        weighted = amount if stage == Stage.WON.value else Decimal(0)
        batch.update(opportunities, key, stage=stage, weighted_amount=weighted, **values)
        self._add_closed(batch, {**row, "stage": stage, "weighted_amount": weighted})

    def _add_open(self, batch: Batch, row: dict[str, Any] | None, sign: int) -> None:
        """Add an open opportunity's figures to (sign 1) or take them from (sign -1) the open
        totals of its stage and of its expected-close month."""
        if row is None:
            return
        stage, owner, currency = row["stage"], row["owner"], row["currency"]
        month = row["expected_close_month"] or ""
        moved = (sign, sign * row["amount"], sign * row["weighted_amount"])
        _add(batch, self["open"], (stage, owner, currency), moved)
        _add(batch, self["forecast"], (month, currency, owner), moved)
        _add(batch, self["open_by_stage"], (stage, currency), moved)
        _add(batch, self["open_by_owner"], (owner, currency), moved)
        _add(batch, self["forecast_by_month"], (month, currency), moved)

    def _add_closed(self, batch: Batch, row: dict[str, Any]) -> None:
        moved = (1, row["amount"], row["weighted_amount"])
        _add(batch, self["closed"], (row["stage"], row["owner"], row["currency"]), moved)
        _add(batch, self["closed_by_stage"], (row["stage"], row["currency"]), moved)

    def pipeline(
        self, conn: Connection, owner: str | None = None, *, explain: Explanation | None = None
    ) -> dict[str, Any]:
        """Open opportunities per stage, per owner and per expected-close month (count, amount,
        probability-weighted amount), each per currency; and what was won and lost."""
        answer = {
            "by_stage": self._grouped(conn, "open", "stage", owner, _in_stage_order),
            "by_owner": self._grouped(conn, "open", "owner", owner, _by_name),
            # Months in order; opportunities without an expected close (month '') last.
            "forecast": self._grouped(
                conn, "forecast", "month", owner, _undated_last, blank_as_none=True
            ),
            "closed": self._grouped(conn, "closed", "stage", owner, _in_stage_order),
        }
        if explain is not None:
            self._explain(explain, conn, answer, owner)
        return attach(answer, explain)

    def _grouped(
        self,
        conn: Connection,
        table: str,
        field: str,
        owner: str | None,
        order: Callable[[Any], Any],
        *,
        blank_as_none: bool = False,
    ) -> list[dict[str, Any]]:
        """The live totals of `table` per `field` and currency, in `order` (a sort key of the
        rows (name, currency, count, amount, weighted amount)), as the pipeline answers them;
        with `blank_as_none`, a name '' as None. Of one owner, that owner's rows of `table`
        added up; of everyone, the rows of the table of every owner's totals as they are (a
        row per group: the database adds nothing up).

        The pipeline has more groups as a business grows (owners, currencies, months ahead),
        so what is done per group is kept small: the amounts are read as the stored integers
        and turned into text by one function made once, the rows are sorted by a key of plain
        tuples (a Row compares slowly), and each group's dict is built once."""
        if owner is None:
            t = self[f"{table}_by_{field}"]
            query = select(
                t.c[field],
                t.c.currency,
                t.c.count,
                type_coerce(t.c.amount, UNITS),
                type_coerce(t.c.weighted_amount, UNITS),
            ).where(t.c.count > LIVE)
        else:
            t = self[table]
            key = t.c[field]
            query = (
                select(
                    key,
                    t.c.currency,
                    func.sum(t.c.count),
                    func.sum(t.c.amount, type_=UNITS),
                    func.sum(t.c.weighted_amount, type_=UNITS),
                )
                .where(t.c.count > LIVE, t.c.owner == owner)
                .group_by(key, t.c.currency)
            )
        rows = sorted(conn.execute(query).all(), key=order)
        return [
            {
                field: (name or None) if blank_as_none else name,
                "currency": currency,
                "count": count,
                "amount": _amount_text(units),
                "weighted_amount": _amount_text(weighted_units),
            }
            for name, currency, count, units, weighted_units in rows
        ]

    def _explain(
        self, x: Explanation, conn: Connection, answer: dict[str, Any], owner: str | None
    ) -> None:
        """Each group by its opportunities: counted by the event that set their stage, their
        amount by the event that set it, the weighted amount by the last event that set the
        amount or the probability."""
        o = self["opportunities"]
        query = select(
            o.c.stage,
            o.c.owner,
            o.c.expected_close_month.label("month"),
            o.c.currency,
            o.c.amount,
            o.c.weighted_amount,
            o.c.amount_position,
            o.c.amount_event,
            o.c.stage_position,
            o.c.stage_event,
            o.c.weighted_position,
            o.c.weighted_event,
        ).order_by(o.c.stage_position)
        if owner is not None:
            query = query.where(o.c.owner == owner)
        rows = conn.execute(query).all()
        open_stages = {s.value for s in OPEN_STAGES}
        closed_stages = {Stage.WON.value, Stage.LOST.value}
        for section, field, stages in (
            ("by_stage", "stage", open_stages),
            ("by_owner", "owner", open_stages),
            ("forecast", "month", open_stages),
            ("closed", "stage", closed_stages),
        ):
            members: dict[tuple[Any, str], list[Any]] = {}
            for r in rows:
                if r.stage in stages:
                    members.setdefault((getattr(r, field), r.currency), []).append(r)
            for i, item in enumerate(answer[section]):
                group = members.get((item[field], item["currency"]), [])
                x.count(
                    pointer(section, i, "count"),
                    [Contribution(r.stage_position, r.stage_event, 1) for r in group],
                )
                x.add(
                    pointer(section, i, "amount"),
                    [Contribution(r.amount_position, r.amount_event, r.amount) for r in group],
                )
                x.add(
                    pointer(section, i, "weighted_amount"),
                    [
                        Contribution(r.weighted_position, r.weighted_event, r.weighted_amount)
                        for r in group
                    ],
                )


# The figures every totals table keeps, and the count of a key with something open (a literal,
# so that the databases see the partial index applies).
TOTALS = ("count", "amount", "weighted_amount")
LIVE = literal_column("0")
# The totals of every owner (table: the field it is keyed by, with the currency), named after
# the per-owner table and the grouping of it they stand for.
ALL_OWNERS = {
    "open_by_stage": "stage",
    "open_by_owner": "owner",
    "forecast_by_month": "month",
    "closed_by_stage": "stage",
}
# An amount, or a sum of them, as the integer units stored (not a Decimal made by the column's
# type).
UNITS = BigInteger()
KEY_LENGTHS = {"stage": 20, "owner": 100, "month": 7, "currency": 3}


# The orders the pipeline lists its groups in, as sort keys of rows (name, currency, ...):
# stages as an opportunity moves through them, owners and months by name (the months without
# an expected close, '' in the table, last); then each by currency.
_STAGE_ORDER = {s.value: i for i, s in enumerate(Stage)}
_by_name = itemgetter(0, 1)


def _in_stage_order(row: Any) -> tuple[int, str]:
    return _STAGE_ORDER[row[0]], row[1]


def _undated_last(row: Any) -> tuple[bool, str, str]:
    return row[0] == "", row[0], row[1]


def _totals_columns(*key: str) -> list[Column[Any]]:
    return [
        *(Column(name, String(KEY_LENGTHS[name]), primary_key=True) for name in key),
        Column("count", Integer, nullable=False),
        Column("amount", Amount(), nullable=False),
        Column("weighted_amount", Amount(), nullable=False),
    ]


def _live_index(table: Table, suffix: str, *key: str) -> None:
    """An index of the live rows of a totals table in the order of `key`, holding the figures
    too: the database reads no row whose opportunities all moved on (months past, stages
    left), and reads the rows in the order the pipeline groups them — the tables of every
    owner by their group, those per owner by owner first (one owner's rows, then by group) —
    instead of sorting them (on SQLite each row sorted cost more than an answer's group)."""
    live = table.c.count > LIVE
    Index(
        f"{table.name}_{suffix}",
        *(table.c[name] for name in (*key, *TOTALS)),
        sqlite_where=live,
        postgresql_where=live,
    )


# A sum of the totals' amounts (in the units an Amount column stores) as the answer's text.
_amount_text = Amount().text_processor()


def _add(batch: Batch, table: Table, key: tuple[str, ...], moved: tuple[Any, ...]) -> None:
    """Add `moved` (count, amount, weighted amount) to the totals row of `key`."""
    names = [c.name for c in table.primary_key.columns]
    batch.add_up(table, dict(zip(names, key, strict=True)), **dict(zip(TOTALS, moved, strict=True)))


def weigh(amount: Decimal, probability: Decimal) -> Decimal:
    """An opportunity's amount weighted by its probability, rounded per opportunity."""
    return round_money(amount * probability / 100)
