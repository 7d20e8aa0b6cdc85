"""The CRM's commands: capture and convert leads, register customers, work opportunities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain import context
from domain.core import Core, Result, command
from domain.crm.activities import Activity, ActivityKind, Regarding
from domain.crm.emails import EmailIndex, email_index_id
from domain.crm.leads import Lead
from domain.crm.opportunities import Opportunity, Stage, open_stage
from domain.crm.parties import Party, PartyKind, PartyRole, kind_for
from domain.crm.taxnumbers import TaxNumberClaim, tax_number, tax_number_claim_id
from domain.errors import InvalidInput, RuleViolation
from domain.values import (
    FUNCTIONAL_CURRENCY,
    ZERO,
    currency,
    email,
    money,
    optional_text,
    percent,
    required_text,
)


class CrmCommands(Core):
    @command
    def capture_lead(
        self,
        *,
        name: str,
        company: str | None = None,
        email_address: str | None = None,
        phone: str | None = None,
        source: str | None = None,
        campaign: str | None = None,
        owner: str | None = None,
    ) -> Result:
        address = email("email", email_address)
        index = self._find(EmailIndex, email_index_id(address)) if address else None
        duplicates = [holder_id for _, holder_id in index.holders] if index else []
        lead = Lead.capture(
            name=required_text("name", name),
            company=optional_text("company", company),
            email=address,
            phone=optional_text("phone", phone, max_length=40),
            source=optional_text("source", source and source.lower(), max_length=50) or "other",
            campaign=optional_text("campaign", campaign, max_length=50),
            owner=optional_text("owner", owner, max_length=100) or context.current().actor,
            possible_duplicates=duplicates,
        )
        index = self._index_email(index, address, "lead", lead.id)
        return self._save(lead, index, possible_duplicates=[str(d) for d in duplicates])

    @command
    def qualify_lead(self, lead_id: UUID) -> Result:
        lead = self._get(Lead, lead_id)
        lead.qualify()
        return self._save(lead)

    @command
    def disqualify_lead(self, lead_id: UUID, reason: str) -> Result:
        lead = self._get(Lead, lead_id)
        lead.disqualify(required_text("reason", reason, max_length=500))
        return self._save(lead)

    @command
    def convert_lead(
        self,
        lead_id: UUID,
        *,
        customer_id: UUID | None = None,
        create_opportunity: bool = True,
        opportunity_title: str | None = None,
        amount: Decimal = ZERO,
        currency_code: str = FUNCTIONAL_CURRENCY,
        expected_close: date | None = None,
        tax_number_value: str | None = None,
        payment_terms_days: int = 30,
        credit_limit: Decimal = ZERO,
    ) -> Result:
        """Make the lead a customer (new, or an existing one) and, unless told otherwise,
        open an opportunity for it: lead, customer and opportunity are saved together."""
        lead = self._get(Lead, lead_id)
        currency_code = currency("opportunity.currency", currency_code)
        index = None
        claim = None
        if customer_id is not None:
            customer = self._get(Party, customer_id, "customer")
            customer.add_role(PartyRole.CUSTOMER)
        else:
            customer, claim = self._new_party(
                name=lead.company or lead.name,
                roles={PartyRole.CUSTOMER},
                tax_number_value=tax_number_value,
                email_address=lead.email,
                phone=lead.phone,
                contacts=[{"name": lead.name, "email": lead.email, "phone": lead.phone}]
                if lead.company
                else [],
                payment_terms_days=payment_terms_days,
                credit_limit=credit_limit,
                currency_code=currency_code,
                lead_id=lead.id,
            )
            if lead.email:
                index = self._index_email(
                    self._find(EmailIndex, email_index_id(lead.email)),
                    lead.email,
                    "customer",
                    customer.id,
                )
        opportunity = None
        if create_opportunity:
            opportunity = Opportunity.open(
                customer_id=customer.id,
                title=required_text(
                    "opportunity.title", opportunity_title or lead.company or lead.name
                ),
                amount=money("opportunity.amount", amount),
                currency=currency("opportunity.currency", currency_code),
                expected_close=expected_close,
                owner=lead.owner,
                lead_id=lead.id,
            )
        lead.convert(customer.id, opportunity.id if opportunity else None)
        return self._save(
            lead,
            customer,
            claim,
            index,
            opportunity,
            customer_id=str(customer.id),
            opportunity_id=str(opportunity.id) if opportunity else None,
        )

    @command
    def register_customer(
        self,
        *,
        name: str,
        tax_number_value: str | None = None,
        tax_office: str | None = None,
        email_address: str | None = None,
        phone: str | None = None,
        addresses: list[dict[str, Any]] | None = None,
        contacts: list[dict[str, Any]] | None = None,
        payment_terms_days: int = 30,
        credit_limit: Decimal = ZERO,
        currency_code: str = FUNCTIONAL_CURRENCY,
        roles: set[PartyRole] | None = None,
        kind: str | None = None,
    ) -> Result:
        party, claim = self._new_party(
            name=name,
            kind=kind,
            roles=roles or {PartyRole.CUSTOMER},
            tax_number_value=tax_number_value,
            tax_office=tax_office,
            email_address=email_address,
            phone=phone,
            addresses=addresses or [],
            contacts=contacts or [],
            payment_terms_days=payment_terms_days,
            credit_limit=credit_limit,
            currency_code=currency_code,
        )
        index = None
        if party.email:
            index = self._index_email(
                self._find(EmailIndex, email_index_id(party.email)),
                party.email,
                "customer",
                party.id,
            )
        return self._save(party, claim, index)

    @command
    def open_opportunity(
        self,
        *,
        customer_id: UUID,
        title: str,
        amount: Decimal,
        currency_code: str = FUNCTIONAL_CURRENCY,
        expected_close: date | None = None,
        owner: str | None = None,
        stage: str = Stage.PROSPECTING.value,
        probability: Decimal | None = None,
    ) -> Result:
        customer = self._get(Party, customer_id, "customer")
        if not customer.is_customer:
            raise RuleViolation(f"party {customer_id} is not a customer")
        opportunity = Opportunity.open(
            customer_id=customer.id,
            title=required_text("title", title),
            amount=money("amount", amount),
            currency=currency("currency", currency_code),
            expected_close=expected_close,
            owner=optional_text("owner", owner, max_length=100) or context.current().actor,
            stage=open_stage("stage", stage),
            probability=None if probability is None else percent("probability", probability),
        )
        return self._save(opportunity)

    @command
    def move_opportunity(
        self, opportunity_id: UUID, stage: str, probability: Decimal | None = None
    ) -> Result:
        opportunity = self._get(Opportunity, opportunity_id)
        opportunity.move_to(
            open_stage("stage", stage),
            None if probability is None else percent("probability", probability),
        )
        return self._save(opportunity)

    @command
    def win_opportunity(self, opportunity_id: UUID) -> Result:
        opportunity = self._get(Opportunity, opportunity_id)
        opportunity.win()
        return self._save(opportunity)

    @command
    def lose_opportunity(self, opportunity_id: UUID, reason: str) -> Result:
        opportunity = self._get(Opportunity, opportunity_id)
        opportunity.lose(required_text("reason", reason, max_length=500))
        return self._save(opportunity)

    @command
    def log_activity(
        self,
        *,
        kind: str,
        subject: str,
        regarding: str,
        regarding_id: UUID,
        notes: str | None = None,
        due: date | None = None,
        owner: str | None = None,
        done: bool = False,
    ) -> Result:
        try:
            activity_kind = ActivityKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in ActivityKind)
            raise InvalidInput("kind", f"{kind!r} is not one of {allowed}") from None
        try:
            target = Regarding(regarding)
        except ValueError:
            allowed = ", ".join(r.value for r in Regarding)
            raise InvalidInput("regarding", f"{regarding!r} is not one of {allowed}") from None
        target_class = {Regarding.LEAD: Lead, Regarding.CUSTOMER: Party}.get(target, Opportunity)
        self._get(target_class, regarding_id, target.value)
        activity = Activity.log(
            kind=activity_kind,
            subject=required_text("subject", subject),
            notes=optional_text("notes", notes, max_length=5000),
            regarding=target,
            regarding_id=regarding_id,
            due=due,
            owner=optional_text("owner", owner, max_length=100) or context.current().actor,
            done=done,
        )
        return self._save(activity)

    @command
    def complete_activity(self, activity_id: UUID) -> Result:
        activity = self._get(Activity, activity_id)
        activity.complete()
        return self._save(activity)

    def _new_party(
        self,
        *,
        name: str,
        roles: set[PartyRole],
        tax_number_value: str | None,
        email_address: str | None,
        phone: str | None,
        contacts: list[dict[str, Any]],
        payment_terms_days: int,
        credit_limit: Decimal,
        currency_code: str,
        tax_office: str | None = None,
        addresses: list[dict[str, Any]] | None = None,
        lead_id: UUID | None = None,
        kind: str | None = None,
    ) -> tuple[Party, TaxNumberClaim | None]:
        number = tax_number("tax_number", tax_number_value)
        try:
            party_kind = kind_for(number) if kind is None else PartyKind(kind)
        except ValueError:
            raise InvalidInput("kind", "must be 'company' or 'person'") from None
        if number is not None:
            existing = self._find(TaxNumberClaim, tax_number_claim_id(number))
            if existing is not None:
                raise RuleViolation(
                    f"tax number {number} already belongs to party {existing.party_id}"
                )
        if payment_terms_days < 0 or payment_terms_days > 3650:
            raise InvalidInput("payment_terms_days", "must be between 0 and 3650")
        party = Party.register(
            name=required_text("name", name),
            kind=party_kind,
            roles=roles,
            tax_number=number,
            tax_office=optional_text("tax_office", tax_office, max_length=100),
            email=email("email", email_address),
            phone=optional_text("phone", phone, max_length=40),
            addresses=[_address(i, a) for i, a in enumerate(addresses or [])],
            contacts=[_contact(i, c) for i, c in enumerate(contacts)],
            payment_terms_days=payment_terms_days,
            credit_limit=money("credit_limit", credit_limit),
            currency=currency("currency", currency_code),
            lead_id=lead_id,
        )
        claim = TaxNumberClaim.claim(number, party.id) if number else None
        return party, claim

    @staticmethod
    def _index_email(
        index: EmailIndex | None, address: str | None, kind: str, holder_id: UUID
    ) -> EmailIndex | None:
        if not address:
            return None
        if index is None:
            return EmailIndex.register(address, kind, holder_id)
        index.add(kind, holder_id)
        return index


def _address(i: int, address: dict[str, Any]) -> dict[str, Any]:
    field = f"addresses[{i}]"
    return {
        "kind": optional_text(f"{field}.kind", address.get("kind"), max_length=20) or "billing",
        "line1": required_text(f"{field}.line1", address.get("line1")),
        "line2": optional_text(f"{field}.line2", address.get("line2")),
        "district": optional_text(f"{field}.district", address.get("district"), max_length=100),
        "city": required_text(f"{field}.city", address.get("city"), max_length=100),
        "postal_code": optional_text(
            f"{field}.postal_code", address.get("postal_code"), max_length=20
        ),
        "country": (
            optional_text(f"{field}.country", address.get("country"), max_length=2) or "TR"
        ).upper(),
    }


def _contact(i: int, contact: dict[str, Any]) -> dict[str, Any]:
    field = f"contacts[{i}]"
    return {
        "name": required_text(f"{field}.name", contact.get("name")),
        "email": email(f"{field}.email", contact.get("email")),
        "phone": optional_text(f"{field}.phone", contact.get("phone"), max_length=40),
        "role": optional_text(f"{field}.role", contact.get("role"), max_length=100),
    }
