"""Activities (calls, meetings, e-mails, notes, tasks) against leads, customers, opportunities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Date, Integer, String, Text, Uuid

from domain.crm.activities import Activity
from projections.engine import Batch, Projection
from projections.types import UtcDateTime


class Activities(Projection):
    name = "activities"
    version = 2  # v2: logged_at indexed (the list, newest first)
    handles = (Activity.Logged, Activity.Completed)

    def define_tables(self) -> None:
        self.table(
            "activities",
            Column("id", Uuid, primary_key=True),
            Column("kind", String(20), nullable=False),
            Column("subject", String(200), nullable=False),
            Column("notes", Text),
            Column("regarding", String(20), nullable=False),
            Column("regarding_id", Uuid, nullable=False, index=True),
            Column("due", Date, index=True),
            Column("owner", String(100), nullable=False, index=True),
            Column("done", Boolean, nullable=False),
            Column("logged_at", UtcDateTime, nullable=False, index=True),
            Column("completed_at", UtcDateTime),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        activities = self["activities"]
        stamp = {"version": event.originator_version, "position": position}
        match event:
            case Activity.Logged():
                batch.insert(
                    activities,
                    id=event.originator_id,
                    kind=event.kind,
                    subject=event.subject,
                    notes=event.notes,
                    regarding=event.regarding,
                    regarding_id=event.regarding_id,
                    due=event.due,
                    owner=event.owner,
                    done=event.done,
                    logged_at=event.timestamp,
                    completed_at=event.timestamp if event.done else None,
                    **stamp,
                )
            case Activity.Completed():
                batch.update(
                    activities,
                    event.originator_id,
                    done=True,
                    completed_at=event.timestamp,
                    **stamp,
                )
