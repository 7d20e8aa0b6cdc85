"""Document numbers: gapless per series and year, because the series is saved in the same
`save` as the document it numbers. Format (as e-Fatura): 3-letter series, 4-digit year,
9-digit sequence, e.g. SAT2026000000001."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity, snapshotted_id

# A series is snapshotted every so many numbers.
SERIES_SNAPSHOT_INTERVAL = 500


def series_id(series: str, year: int) -> UUID:
    """A series gains an event with every document it numbers (tens of thousands a year): it
    is loaded from its latest snapshot."""
    return snapshotted_id("number-series", f"{series}/{year}", SERIES_SNAPSHOT_INTERVAL)


def format_number(series: str, year: int, sequence: int) -> str:
    return f"{series}{year:04d}{sequence:09d}"


class NumberSeries(Entity):
    class Started(Entity.Created):
        series: str
        year: int

        def apply(self, s: NumberSeries) -> None:
            s.series = self.series
            s.year = self.year
            s.last = 0

    class NumberIssued(Entity.Event):
        sequence: int
        number: str
        document_id: UUID

        def apply(self, s: NumberSeries) -> None:
            s.last = self.sequence

    if TYPE_CHECKING:
        series: str
        year: int
        last: int

    @classmethod
    def start(cls, series: str, year: int) -> NumberSeries:
        s: NumberSeries = cls._create(
            cls.Started, id=series_id(series, year), series=series, year=year
        )
        return s

    def issue(self, document_id: UUID) -> str:
        sequence = self.last + 1
        number = format_number(self.series, self.year, sequence)
        self.trigger_event(
            self.NumberIssued, sequence=sequence, number=number, document_id=document_id
        )
        return number
