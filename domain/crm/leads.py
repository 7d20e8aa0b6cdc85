"""A lead: someone who may buy, captured from a source, qualified or not, converted or not."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity
from domain.errors import RuleViolation


class LeadStatus(StrEnum):
    NEW = "new"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    CONVERTED = "converted"


class Lead(Entity):
    class Captured(Entity.Created):
        name: str
        company: str | None
        email: str | None
        phone: str | None
        source: str
        campaign: str | None
        owner: str
        possible_duplicates: list[UUID]

        def apply(self, lead: Lead) -> None:
            lead.name = self.name
            lead.company = self.company
            lead.email = self.email
            lead.phone = self.phone
            lead.source = self.source
            lead.campaign = self.campaign
            lead.owner = self.owner
            lead.possible_duplicates = list(self.possible_duplicates)
            lead.status = LeadStatus.NEW
            lead.customer_id = None
            lead.opportunity_id = None

    class Qualified(Entity.Event):
        def apply(self, lead: Lead) -> None:
            lead.status = LeadStatus.QUALIFIED

    class Disqualified(Entity.Event):
        reason: str

        def apply(self, lead: Lead) -> None:
            lead.status = LeadStatus.DISQUALIFIED

    class Converted(Entity.Event):
        customer_id: UUID
        opportunity_id: UUID | None

        def apply(self, lead: Lead) -> None:
            lead.status = LeadStatus.CONVERTED
            lead.customer_id = self.customer_id
            lead.opportunity_id = self.opportunity_id

    if TYPE_CHECKING:
        name: str
        company: str | None
        email: str | None
        phone: str | None
        source: str
        campaign: str | None
        owner: str
        possible_duplicates: list[UUID]
        status: LeadStatus
        customer_id: UUID | None
        opportunity_id: UUID | None

    @classmethod
    def capture(
        cls,
        *,
        name: str,
        company: str | None,
        email: str | None,
        phone: str | None,
        source: str,
        campaign: str | None,
        owner: str,
        possible_duplicates: list[UUID],
    ) -> Lead:
        lead: Lead = cls._create(
            cls.Captured,
            name=name,
            company=company,
            email=email,
            phone=phone,
            source=source,
            campaign=campaign,
            owner=owner,
            possible_duplicates=list(possible_duplicates),
        )
        return lead

    def qualify(self) -> None:
        self._ensure_status(LeadStatus.NEW, action="qualify")
        self.trigger_event(self.Qualified)

    def disqualify(self, reason: str) -> None:
        self._ensure_status(LeadStatus.NEW, LeadStatus.QUALIFIED, action="disqualify")
        self.trigger_event(self.Disqualified, reason=reason)

    def convert(self, customer_id: UUID, opportunity_id: UUID | None) -> None:
        self._ensure_status(LeadStatus.NEW, LeadStatus.QUALIFIED, action="convert")
        self.trigger_event(
            self.Converted,
            customer_id=customer_id,
            opportunity_id=opportunity_id,
        )

    def _ensure_status(self, *allowed: LeadStatus, action: str) -> None:
        if self.status not in allowed:
            raise RuleViolation(f"cannot {action} lead {self.id}: it is {self.status}")
