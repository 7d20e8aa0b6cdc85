"""Parties (customers, later also suppliers) as the list and detail pages show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Integer, String, Uuid

from domain.crm.parties import Party
from projections.engine import Batch, Projection
from projections.types import Amount, UtcDateTime


class Customers(Projection):
    name = "customers"
    version = 3  # v2: kind (company or person); v3: registered (its position)
    handles = (Party.Registered, Party.RoleAdded)

    def define_tables(self) -> None:
        self.table(
            "parties",
            Column("id", Uuid, primary_key=True),
            Column("name", String(200), nullable=False, index=True),
            Column("kind", String(10), nullable=False),
            Column("is_customer", Integer, nullable=False),
            Column("is_supplier", Integer, nullable=False),
            Column("tax_number", String(11), index=True),
            Column("tax_office", String(100)),
            Column("email", String(254), index=True),
            Column("phone", String(40)),
            Column("addresses", JSON, nullable=False),
            Column("contacts", JSON, nullable=False),
            Column("payment_terms_days", Integer, nullable=False),
            Column("credit_limit", Amount(), nullable=False),
            Column("currency", String(3), nullable=False),
            Column("lead_id", Uuid),
            Column("registered_at", UtcDateTime, nullable=False),
            # The position of its registration: whether it was a party as of a position,
            # read from the live table (`position` is its last event's).
            Column("registered", Integer, nullable=False),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        parties = self["parties"]
        stamp = {"version": event.originator_version, "position": position}
        match event:
            case Party.Registered():
                batch.insert(
                    parties,
                    id=event.originator_id,
                    name=event.name,
                    kind=event.kind,
                    is_customer=int("customer" in event.roles),
                    is_supplier=int("supplier" in event.roles),
                    tax_number=event.tax_number,
                    tax_office=event.tax_office,
                    email=event.email,
                    phone=event.phone,
                    addresses=event.addresses,
                    contacts=event.contacts,
                    payment_terms_days=event.payment_terms_days,
                    credit_limit=event.credit_limit,
                    currency=event.currency,
                    lead_id=event.lead_id,
                    registered_at=event.timestamp,
                    registered=position,
                    **stamp,
                )
            case Party.RoleAdded():
                batch.update(parties, event.originator_id, **{f"is_{event.role}": 1}, **stamp)
