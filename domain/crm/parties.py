"""A party (cari hesap): one current account that can be a customer, a supplier, or both."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity


class PartyRole(StrEnum):
    CUSTOMER = "customer"
    SUPPLIER = "supplier"


class PartyKind(StrEnum):
    COMPANY = "company"
    PERSON = "person"


def kind_for(tax_number: str | None) -> PartyKind:
    """A TCKN (11 digits) identifies a person; a VKN (10 digits), or none, a company."""
    return PartyKind.PERSON if tax_number and len(tax_number) == 11 else PartyKind.COMPANY


class Party(Entity):
    class Registered(Entity.Created):
        class_version = 2  # v2 added `kind`; v1 events are upcast from their tax number

        name: str
        kind: str
        roles: list[str]
        tax_number: str | None
        tax_office: str | None
        email: str | None
        phone: str | None
        addresses: list[dict[str, Any]]
        contacts: list[dict[str, Any]]
        payment_terms_days: int
        credit_limit: Decimal
        currency: str
        lead_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["kind"] = kind_for(state.get("tax_number")).value

        def apply(self, party: Party) -> None:
            party.name = self.name
            party.kind = PartyKind(self.kind)
            party.roles = {PartyRole(r) for r in self.roles}
            party.tax_number = self.tax_number
            party.tax_office = self.tax_office
            party.email = self.email
            party.phone = self.phone
            party.addresses = list(self.addresses)
            party.contacts = list(self.contacts)
            party.payment_terms_days = self.payment_terms_days
            party.credit_limit = self.credit_limit
            party.currency = self.currency

    class RoleAdded(Entity.Event):
        role: str

        def apply(self, party: Party) -> None:
            party.roles.add(PartyRole(self.role))

    if TYPE_CHECKING:
        name: str
        kind: PartyKind
        roles: set[PartyRole]
        tax_number: str | None
        tax_office: str | None
        email: str | None
        phone: str | None
        addresses: list[dict[str, Any]]
        contacts: list[dict[str, Any]]
        payment_terms_days: int
        credit_limit: Decimal
        currency: str

    @classmethod
    def register(
        cls,
        *,
        name: str,
        kind: PartyKind,
        roles: set[PartyRole],
        tax_number: str | None,
        tax_office: str | None,
        email: str | None,
        phone: str | None,
        addresses: list[dict[str, Any]],
        contacts: list[dict[str, Any]],
        payment_terms_days: int,
        credit_limit: Decimal,
        currency: str,
        lead_id: UUID | None = None,
    ) -> Party:
        party: Party = cls._create(
            cls.Registered,
            name=name,
            kind=kind.value,
            roles=sorted(r.value for r in roles),
            tax_number=tax_number,
            tax_office=tax_office,
            email=email,
            phone=phone,
            addresses=addresses,
            contacts=contacts,
            payment_terms_days=payment_terms_days,
            credit_limit=credit_limit,
            currency=currency,
            lead_id=lead_id,
        )
        return party

    @property
    def is_customer(self) -> bool:
        return PartyRole.CUSTOMER in self.roles

    def add_role(self, role: PartyRole) -> None:
        if role not in self.roles:
            self.trigger_event(self.RoleAdded, role=role.value)
