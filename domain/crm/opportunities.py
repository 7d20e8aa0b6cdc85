"""An opportunity: a deal in the pipeline, moving through stages until it is won or lost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity
from domain.errors import InvalidInput, RuleViolation


class Stage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


OPEN_STAGES = (Stage.PROSPECTING, Stage.QUALIFICATION, Stage.PROPOSAL, Stage.NEGOTIATION)

DEFAULT_PROBABILITY: dict[Stage, Decimal] = {
    Stage.PROSPECTING: Decimal(10),
    Stage.QUALIFICATION: Decimal(20),
    Stage.PROPOSAL: Decimal(50),
    Stage.NEGOTIATION: Decimal(75),
    Stage.WON: Decimal(100),
    Stage.LOST: Decimal(0),
}


def open_stage(field: str, value: str) -> Stage:
    try:
        stage = Stage(value)
    except ValueError:
        stage = None
    if stage not in OPEN_STAGES:
        allowed = ", ".join(s.value for s in OPEN_STAGES)
        raise InvalidInput(
            field, f"{value!r} is not an open stage ({allowed}); use /win or /lose to close"
        )
    return stage


class Opportunity(Entity):
    class Opened(Entity.Created):
        customer_id: UUID
        title: str
        amount: Decimal
        currency: str
        expected_close: date | None
        owner: str
        stage: str
        probability: Decimal
        lead_id: UUID | None

        def apply(self, opp: Opportunity) -> None:
            opp.customer_id = self.customer_id
            opp.title = self.title
            opp.amount = self.amount
            opp.currency = self.currency
            opp.expected_close = self.expected_close
            opp.owner = self.owner
            opp.stage = Stage(self.stage)
            opp.probability = self.probability

    class StageChanged(Entity.Event):
        stage: str
        probability: Decimal

        def apply(self, opp: Opportunity) -> None:
            opp.stage = Stage(self.stage)
            opp.probability = self.probability

    class Won(Entity.Event):
        def apply(self, opp: Opportunity) -> None:
            opp.stage = Stage.WON
            opp.probability = DEFAULT_PROBABILITY[Stage.WON]

    class Lost(Entity.Event):
        reason: str

        def apply(self, opp: Opportunity) -> None:
            opp.stage = Stage.LOST
            opp.probability = DEFAULT_PROBABILITY[Stage.LOST]

    if TYPE_CHECKING:
        customer_id: UUID
        title: str
        amount: Decimal
        currency: str
        expected_close: date | None
        owner: str
        stage: Stage
        probability: Decimal

    @classmethod
    def open(
        cls,
        *,
        customer_id: UUID,
        title: str,
        amount: Decimal,
        currency: str,
        expected_close: date | None,
        owner: str,
        stage: Stage = Stage.PROSPECTING,
        probability: Decimal | None = None,
        lead_id: UUID | None = None,
    ) -> Opportunity:
        opp: Opportunity = cls._create(
            cls.Opened,
            customer_id=customer_id,
            title=title,
            amount=amount,
            currency=currency,
            expected_close=expected_close,
            owner=owner,
            stage=stage.value,
            probability=DEFAULT_PROBABILITY[stage] if probability is None else probability,
            lead_id=lead_id,
        )
        return opp

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    def move_to(self, stage: Stage, probability: Decimal | None = None) -> None:
        self._ensure_open("change the stage of")
        if stage not in OPEN_STAGES:
            raise RuleViolation("an opportunity is closed with win or lose, not by a stage change")
        new_probability = DEFAULT_PROBABILITY[stage] if probability is None else probability
        if stage == self.stage and new_probability == self.probability:
            return
        self.trigger_event(self.StageChanged, stage=stage.value, probability=new_probability)

    def win(self) -> None:
        self._ensure_open("win")
        self.trigger_event(self.Won)

    def lose(self, reason: str) -> None:
        self._ensure_open("lose")
        self.trigger_event(self.Lost, reason=reason)

    def _ensure_open(self, action: str) -> None:
        if not self.is_open:
            raise RuleViolation(
                f"cannot {action} opportunity {self.id}: it is already {self.stage}"
            )
