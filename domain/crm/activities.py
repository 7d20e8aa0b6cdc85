"""An activity: a call, meeting, e-mail, note or task logged against a lead, customer or
opportunity."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity
from domain.errors import RuleViolation


class ActivityKind(StrEnum):
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"
    TASK = "task"


class Regarding(StrEnum):
    LEAD = "lead"
    CUSTOMER = "customer"
    OPPORTUNITY = "opportunity"


class Activity(Entity):
    class Logged(Entity.Created):
        kind: str
        subject: str
        notes: str | None
        regarding: str
        regarding_id: UUID
        due: date | None
        owner: str
        done: bool

        def apply(self, activity: Activity) -> None:
            activity.kind = ActivityKind(self.kind)
            activity.subject = self.subject
            activity.regarding = Regarding(self.regarding)
            activity.regarding_id = self.regarding_id
            activity.due = self.due
            activity.owner = self.owner
            activity.done = self.done

    class Completed(Entity.Event):
        def apply(self, activity: Activity) -> None:
            activity.done = True

    if TYPE_CHECKING:
        kind: ActivityKind
        subject: str
        regarding: Regarding
        regarding_id: UUID
        due: date | None
        owner: str
        done: bool

    @classmethod
    def log(
        cls,
        *,
        kind: ActivityKind,
        subject: str,
        notes: str | None,
        regarding: Regarding,
        regarding_id: UUID,
        due: date | None,
        owner: str,
        done: bool,
    ) -> Activity:
        activity: Activity = cls._create(
            cls.Logged,
            kind=kind.value,
            subject=subject,
            notes=notes,
            regarding=regarding.value,
            regarding_id=regarding_id,
            due=due,
            owner=owner,
            done=done,
        )
        return activity

    def complete(self) -> None:
        if self.done:
            raise RuleViolation(f"activity {self.id} is already done")
        self.trigger_event(self.Completed)
