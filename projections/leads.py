"""Leads as sales sees them, and the lead funnel by source and campaign."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Integer,
    String,
    Text,
    Uuid,
    func,
    select,
)

from domain.crm.leads import Lead, LeadStatus
from projections.engine import Batch, Projection
from projections.explain import Contribution, Explanation, attach, event_name, pointer
from projections.types import UtcDateTime

CAPTURED = event_name(Lead.Captured)
CONVERTED = event_name(Lead.Converted)
DISQUALIFIED = event_name(Lead.Disqualified)
# What the funnel counts of each lead, in this order.
FUNNEL = ("captured", "qualified", "converted", "disqualified")


class Leads(Projection):
    name = "leads"
    version = 3  # v3: the funnel's counts per source and campaign
    handles = (Lead.Captured, Lead.Qualified, Lead.Disqualified, Lead.Converted)

    def define_tables(self) -> None:
        self.table(
            "leads",
            Column("id", Uuid, primary_key=True),
            Column("name", String(200), nullable=False),
            Column("company", String(200)),
            Column("email", String(254), index=True),
            Column("phone", String(40)),
            Column("source", String(50), nullable=False, index=True),
            Column("campaign", String(50), index=True),
            Column("owner", String(100), nullable=False, index=True),
            Column("status", String(20), nullable=False, index=True),
            Column("possible_duplicate", Boolean, nullable=False),
            Column("duplicate_of", JSON, nullable=False),
            Column("reached_qualified", Boolean, nullable=False),
            Column("captured_at", UtcDateTime, nullable=False, index=True),
            Column("qualified_at", UtcDateTime),
            Column("disqualified_at", UtcDateTime),
            Column("disqualify_reason", Text),
            Column("converted_at", UtcDateTime),
            Column("customer_id", Uuid),
            Column("opportunity_id", Uuid),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
            # The events that put the lead into each count of the funnel.
            Column("captured_position", Integer, nullable=False),
            Column("qualified_position", Integer),
            Column("qualified_event", String(40)),
            Column("converted_position", Integer),
            Column("disqualified_position", Integer),
        )
        # The funnel's counts per source and campaign, moved as leads are captured and change
        # status (docs/decisions/0008): the report reads a row per source and campaign, not
        # every lead. `no_campaign` tells a lead without a campaign (campaign '') from one
        # whose campaign is ''.
        self.table(
            "funnel",
            Column("source", String(50), primary_key=True),
            Column("no_campaign", Boolean, primary_key=True),
            Column("campaign", String(50), primary_key=True),
            *(Column(name, Integer, nullable=False) for name in FUNNEL),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        leads = self["leads"]
        key = event.originator_id
        stamp = {"version": event.originator_version, "position": position}
        before = None if isinstance(event, Lead.Captured) else batch.get(leads, key)
        counted = None if before is None else _in_funnel(before)
        match event:
            case Lead.Captured():
                batch.insert(
                    leads,
                    id=key,
                    name=event.name,
                    company=event.company,
                    email=event.email,
                    phone=event.phone,
                    source=event.source,
                    campaign=event.campaign,
                    owner=event.owner,
                    status=LeadStatus.NEW.value,
                    possible_duplicate=bool(event.possible_duplicates),
                    duplicate_of=[str(d) for d in event.possible_duplicates],
                    reached_qualified=False,
                    captured_at=event.timestamp,
                    captured_position=position,
                    **stamp,
                )
            case Lead.Qualified():
                batch.update(
                    leads,
                    key,
                    status=LeadStatus.QUALIFIED.value,
                    reached_qualified=True,
                    qualified_at=event.timestamp,
                    qualified_position=position,
                    qualified_event=event_name(Lead.Qualified),
                    **stamp,
                )
            case Lead.Disqualified():
                batch.update(
                    leads,
                    key,
                    status=LeadStatus.DISQUALIFIED.value,
                    disqualified_at=event.timestamp,
                    disqualify_reason=event.reason,
                    disqualified_position=position,
                    **stamp,
                )
            case Lead.Converted():
                # Converted straight from new, the conversion is what qualified it.
                row = batch.get(leads, key)
                qualified = (
                    {}
                    if row is None or row["qualified_position"] is not None
                    else {"qualified_position": position, "qualified_event": CONVERTED}
                )
                batch.update(
                    leads,
                    key,
                    status=LeadStatus.CONVERTED.value,
                    reached_qualified=True,
                    converted_at=event.timestamp,
                    customer_id=event.customer_id,
                    opportunity_id=event.opportunity_id,
                    converted_position=position,
                    **qualified,
                    **stamp,
                )
        after = batch.get(leads, key)
        if after is not None:
            self._move_funnel(batch, after, counted)

    def _move_funnel(
        self, batch: Batch, lead: dict[str, Any], before: tuple[int, ...] | None
    ) -> None:
        """Move the funnel's counts of the lead's source and campaign from what the lead
        counted in `before` (None: nothing, it is new) to what it counts in now."""
        now = _in_funnel(lead)
        moved = now if before is None else tuple(a - b for a, b in zip(now, before, strict=True))
        if any(moved):
            key = {
                "source": lead["source"],
                "no_campaign": lead["campaign"] is None,
                "campaign": lead["campaign"] or "",
            }
            batch.add_up(self["funnel"], key, **dict(zip(FUNNEL, moved, strict=True)))

    def report(self, conn: Connection, *, explain: Explanation | None = None) -> dict[str, Any]:
        """The funnel by source, by campaign and in all; explained, each count by its leads
        and the event that put each into it (the rates are ratios of explained counts)."""
        answer = {
            "by_source": self.funnel(conn, "source"),
            "by_campaign": self.funnel(conn, "campaign"),
            "total": self.funnel(conn, None)[0],
        }
        if explain is not None:
            self._explain(explain, conn, answer)
        return attach(answer, explain)

    def _explain(self, x: Explanation, conn: Connection, answer: dict[str, Any]) -> None:
        leads = self["leads"]
        rows = conn.execute(
            select(
                leads.c.source,
                leads.c.campaign,
                leads.c.captured_position,
                leads.c.qualified_position,
                leads.c.qualified_event,
                leads.c.converted_position,
                leads.c.disqualified_position,
            ).order_by(leads.c.captured_position)
        ).all()

        def counts(group: Sequence[Any]) -> dict[str, list[Contribution]]:
            return {
                "captured": [Contribution(r.captured_position, CAPTURED, 1) for r in group],
                "qualified": [
                    Contribution(r.qualified_position, r.qualified_event, 1)
                    for r in group
                    if r.qualified_position is not None
                ],
                "converted": [
                    Contribution(r.converted_position, CONVERTED, 1)
                    for r in group
                    if r.converted_position is not None
                ],
                "disqualified": [
                    Contribution(r.disqualified_position, DISQUALIFIED, 1)
                    for r in group
                    if r.disqualified_position is not None
                ],
            }

        for section, field in (("by_source", "source"), ("by_campaign", "campaign")):
            for i, item in enumerate(answer[section]):
                group = [r for r in rows if getattr(r, field) == item[field]]
                for name, found in counts(group).items():
                    x.count(pointer(section, i, name), found)
        for name, found in counts(rows).items():
            x.count(pointer("total", name), found)

    def funnel(self, conn: Connection, by: str | None) -> list[dict[str, Any]]:
        """Captured, qualified, converted and disqualified leads per source or campaign (leads
        without a campaign last), or in all when `by` is None, with conversion rates; added
        up from the counts per source and campaign. A converted lead counts as qualified: it
        got past that stage."""
        f = self["funnel"]
        sums = [func.coalesce(func.sum(f.c[name]), 0).label(name) for name in FUNNEL]
        if by is None:
            query = select(*sums)
        elif by == "source":
            query = select(f.c.source.label("key"), *sums).group_by(f.c.source)
            query = query.order_by(f.c.source)
        else:
            group = (f.c.no_campaign, f.c.campaign)
            query = select(*group, f.c.campaign.label("key"), *sums).group_by(*group)
            query = query.order_by(*group)
        out = []
        for row in conn.execute(query).all():
            item: dict[str, Any] = {}
            if by is not None:
                item[by] = None if by == "campaign" and row.no_campaign else row.key
            item.update(
                captured=row.captured,
                qualified=row.qualified,
                converted=row.converted,
                disqualified=row.disqualified,
                qualification_rate=rate(row.qualified, row.captured),
                conversion_rate=rate(row.converted, row.captured),
                qualified_to_converted_rate=rate(row.converted, row.qualified),
            )
            out.append(item)
        return out


def _in_funnel(lead: dict[str, Any]) -> tuple[int, ...]:
    """What a lead counts for in the funnel (FUNNEL's order): captured; qualified once it got
    that far (converted included); converted or disqualified by its status."""
    status = lead["status"]
    return (
        1,
        int(bool(lead["reached_qualified"])),
        int(status == LeadStatus.CONVERTED.value),
        int(status == LeadStatus.DISQUALIFIED.value),
    )


def rate(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1")))
