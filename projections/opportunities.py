"""Opportunities, and the pipeline: per stage and owner, and the forecast by closing month."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Integer,
    String,
    Text,
    Uuid,
    func,
    select,
)

from domain.crm.opportunities import OPEN_STAGES, Opportunity, Stage
from domain.values import round_money
from projections.engine import Batch, Projection
from projections.types import Amount, Percent, UtcDateTime


class Opportunities(Projection):
    name = "opportunities"
    version = 1
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
            Column("opened_at", UtcDateTime, nullable=False),
            Column("closed_at", UtcDateTime),
            Column("lost_reason", Text),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        opportunities = self["opportunities"]
        key = event.originator_id
        stamp = {"version": event.originator_version, "position": position}
        match event:
            case Opportunity.Opened():
                batch.insert(
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
                    **stamp,
                )
            case Opportunity.StageChanged():
                row = batch.get(opportunities, key)
                batch.update(
                    opportunities,
                    key,
                    stage=event.stage,
                    probability=event.probability,
                    weighted_amount=weigh(row["amount"], event.probability) if row else 0,
                    **stamp,
                )
            case Opportunity.Won():
                batch.update(
                    opportunities,
                    key,
                    stage=Stage.WON.value,
                    probability=Decimal(100),
                    weighted_amount=(batch.get(opportunities, key) or {}).get("amount", 0),
                    closed_at=event.timestamp,
                    **stamp,
                )
            case Opportunity.Lost():
                batch.update(
                    opportunities,
                    key,
                    stage=Stage.LOST.value,
                    probability=Decimal(0),
                    weighted_amount=Decimal(0),
                    closed_at=event.timestamp,
                    lost_reason=event.reason,
                    **stamp,
                )

    def pipeline(self, conn: Connection, owner: str | None = None) -> dict[str, Any]:
        """Open opportunities per stage, per owner and per expected-close month (count, amount,
        probability-weighted amount), each per currency; and what was won and lost."""
        o = self["opportunities"]
        amount = func.sum(o.c.amount).label("amount")
        weighted = func.sum(o.c.weighted_amount).label("weighted")

        def grouped(*keys: Any, stages: tuple[Stage, ...] = OPEN_STAGES) -> list[dict[str, Any]]:
            query = (
                select(*keys, o.c.currency, func.count(), amount, weighted)
                .where(o.c.stage.in_([s.value for s in stages]))
                .group_by(*keys, o.c.currency)
                .order_by(*keys, o.c.currency)
            )
            if owner is not None:
                query = query.where(o.c.owner == owner)
            out = []
            for row in conn.execute(query).all():
                *names, currency, count, total, weight = row
                item = {k.name: v for k, v in zip(keys, names, strict=True)}
                item.update(
                    currency=currency,
                    count=count,
                    amount=str(total),
                    weighted_amount=str(weight),
                )
                out.append(item)
            return out

        stage_order = {s.value: i for i, s in enumerate(Stage)}
        by_stage = sorted(grouped(o.c.stage), key=lambda r: stage_order[r["stage"]])
        return {
            "by_stage": by_stage,
            "by_owner": grouped(o.c.owner),
            "forecast": [
                {"month": r.pop("expected_close_month"), **r}
                for r in grouped(o.c.expected_close_month)
            ],
            "closed": sorted(
                grouped(o.c.stage, stages=(Stage.WON, Stage.LOST)),
                key=lambda r: stage_order[r["stage"]],
            ),
        }


def weigh(amount: Decimal, probability: Decimal) -> Decimal:
    """An opportunity's amount weighted by its probability, rounded per opportunity."""
    return round_money(amount * probability / 100)
