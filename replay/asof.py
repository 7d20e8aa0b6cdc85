"""Any report as it stood at a past moment: the store is replayed up to that moment into a
temporary read model (in memory), and the report's own query runs on it.

A moment is a position in the log (`1234`), an instant (`2026-11-01T17:30:00+03:00`; without
an offset, the business time zone), or a day (`2026-11-01`: the end of that day). Events are
stamped when recorded; the moment's position is the last event recorded at or before it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from domain.app import Business
from domain.errors import InvalidInput
from projections.engine import Projection
from projections.registry import all_projections
from projections.runner import Runner
from projections.store import ReadStore

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Moment:
    text: str
    position: int | None  # None: the live read models, cut at a business date
    day: date  # the business date of the moment: reports with dates stop there

    def __str__(self) -> str:
        return f"{self.text} (position {self.position}, {self.day})"


def _recorded_at(business: Business, position: int) -> tuple[int, datetime] | None:
    """The first event at or after `position`, and when it was recorded."""
    found = business.recorder.select_notifications(start=position, limit=1)
    if not found:
        return None
    state = json.loads(bytes(found[0].state))
    return found[0].id, datetime.fromisoformat(state["timestamp"]["_data_"])


def position_at(business: Business, instant: datetime) -> int:
    """The last position recorded at or before `instant`: a binary search over the log, whose
    timestamps grow with its positions (positions may have gaps)."""
    low, high = 0, business.recorder.max_notification_id() or 0
    while low < high:
        middle = (low + high + 1) // 2
        found = _recorded_at(business, middle)
        if found is not None and found[0] <= high and found[1] <= instant:
            low = found[0]  # the answer is this event or a later one
        else:
            high = middle - 1  # nothing in [middle, high] was recorded by then
    return low


def is_day(text: str) -> bool:
    return bool(_DAY.match(text.strip()))


def business_day(text: str) -> Moment:
    try:
        return Moment(text, None, date.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInput("as_of", f"{text!r} is not a day (YYYY-MM-DD)") from None


def resolve(business: Business, text: str) -> Moment:
    raw = text.strip()
    zone = business.timezone
    head = business.recorder.max_notification_id() or 0
    if raw.isdigit():
        position = int(raw)
        if position > head:
            raise InvalidInput(
                "as_of", f"position {position} is beyond the head of the log ({head})"
            )
        found = _recorded_at(business, position) if position else None
        day = found[1].astimezone(zone).date() if found else business.today()
        return Moment(raw, position, day)
    try:
        if _DAY.match(raw):
            day = date.fromisoformat(raw)
            instant = datetime.combine(day + timedelta(days=1), time.min, zone) - timedelta(
                microseconds=1
            )
        else:
            instant = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=zone)
            day = instant.astimezone(zone).date()
    except ValueError:
        raise InvalidInput(
            "as_of",
            "give a position (1234), a day (2026-11-01) or an instant (2026-11-01T17:30:00+03:00)",
        ) from None
    return Moment(raw, position_at(business, instant), day)


def replay(business: Business, names: Sequence[str], position: int) -> ReadStore:
    """A temporary in-memory read store holding `names` as they stood at `position`."""
    chosen: list[Projection] = [p for p in all_projections() if p.name in names]
    missing = set(names) - {p.name for p in chosen}
    if missing:
        raise ValueError(f"unknown read models: {sorted(missing)}")
    reads = ReadStore("memory://", chosen)
    reads.create_tables()
    if position:
        Runner(business, reads, chosen, batch_size=5000).catch_up(stop=position)
    return reads
