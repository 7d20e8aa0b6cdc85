"""A quote: what a customer is offered, at what price, until when. Draft -> sent -> accepted,
rejected or expired; a revision is a new quote, and the old one stays readable."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity
from domain.errors import RuleViolation


class QuoteStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVISED = "revised"


class Quote(Entity):
    class Drafted(Entity.Created):
        number: str
        revision: int
        revision_of: UUID | None
        customer_id: UUID
        opportunity_id: UUID | None
        currency: str
        valid_until: date
        payment_terms_days: int
        lines: list[dict[str, Any]]
        totals: dict[str, Any]

        def apply(self, quote: Quote) -> None:
            quote.number = self.number
            quote.revision = self.revision
            quote.customer_id = self.customer_id
            quote.opportunity_id = self.opportunity_id
            quote.currency = self.currency
            quote.valid_until = self.valid_until
            quote.payment_terms_days = self.payment_terms_days
            quote.lines = list(self.lines)
            quote.totals = dict(self.totals)
            quote.status = QuoteStatus.DRAFT
            quote.order_id = None

    class Sent(Entity.Event):
        def apply(self, quote: Quote) -> None:
            quote.status = QuoteStatus.SENT

    class Accepted(Entity.Event):
        def apply(self, quote: Quote) -> None:
            quote.status = QuoteStatus.ACCEPTED

    class Rejected(Entity.Event):
        reason: str | None

        def apply(self, quote: Quote) -> None:
            quote.status = QuoteStatus.REJECTED

    class Expired(Entity.Event):
        as_of: date

        def apply(self, quote: Quote) -> None:
            quote.status = QuoteStatus.EXPIRED

    class Revised(Entity.Event):
        new_quote_id: UUID

        def apply(self, quote: Quote) -> None:
            quote.status = QuoteStatus.REVISED

    class Ordered(Entity.Event):
        order_id: UUID

        def apply(self, quote: Quote) -> None:
            quote.order_id = self.order_id

    if TYPE_CHECKING:
        number: str
        revision: int
        customer_id: UUID
        opportunity_id: UUID | None
        currency: str
        valid_until: date
        payment_terms_days: int
        lines: list[dict[str, Any]]
        totals: dict[str, Any]
        status: QuoteStatus
        order_id: UUID | None

    @classmethod
    def draft(
        cls,
        *,
        quote_id: UUID,
        number: str,
        customer_id: UUID,
        opportunity_id: UUID | None,
        currency: str,
        valid_until: date,
        payment_terms_days: int,
        lines: list[dict[str, Any]],
        totals: dict[str, Any],
        revision: int = 1,
        revision_of: UUID | None = None,
    ) -> Quote:
        quote: Quote = cls._create(
            cls.Drafted,
            id=quote_id,
            number=number,
            revision=revision,
            revision_of=revision_of,
            customer_id=customer_id,
            opportunity_id=opportunity_id,
            currency=currency,
            valid_until=valid_until,
            payment_terms_days=payment_terms_days,
            lines=lines,
            totals=totals,
        )
        return quote

    def send(self) -> None:
        self._ensure(QuoteStatus.DRAFT, action="send")
        self.trigger_event(self.Sent)

    def accept(self, today: date) -> None:
        self._ensure(QuoteStatus.DRAFT, QuoteStatus.SENT, action="accept")
        if today > self.valid_until:
            raise RuleViolation(
                f"quote {self.number} expired on {self.valid_until}; revise it to offer again"
            )
        self.trigger_event(self.Accepted)

    def reject(self, reason: str | None) -> None:
        self._ensure(QuoteStatus.DRAFT, QuoteStatus.SENT, action="reject")
        self.trigger_event(self.Rejected, reason=reason)

    def expire(self, today: date) -> bool:
        """Expire a quote past its validity; False (and nothing recorded) otherwise."""
        if self.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT) or today <= self.valid_until:
            return False
        self.trigger_event(self.Expired, as_of=today)
        return True

    def supersede(self, new_quote_id: UUID) -> None:
        self._ensure(
            QuoteStatus.DRAFT,
            QuoteStatus.SENT,
            QuoteStatus.REJECTED,
            QuoteStatus.EXPIRED,
            action="revise",
        )
        self.trigger_event(self.Revised, new_quote_id=new_quote_id)

    def record_order(self, order_id: UUID) -> None:
        self._ensure(QuoteStatus.ACCEPTED, action="order")
        if self.order_id is not None:
            raise RuleViolation(f"quote {self.number} was already ordered as {self.order_id}")
        self.trigger_event(self.Ordered, order_id=order_id)

    def _ensure(self, *allowed: QuoteStatus, action: str) -> None:
        if self.status not in allowed:
            raise RuleViolation(f"cannot {action} quote {self.number}: it is {self.status}")

    @property
    def total(self) -> Decimal:
        return Decimal(self.totals["total"])
