"""A number series gains an event with every document it numbers: it is loaded from a
snapshot taken every 500 numbers, on the real stores, and comes back the same."""

from __future__ import annotations

from uuid import uuid4

from api.services import Services
from domain import context
from domain.app import open_business
from domain.context import CommandContext
from domain.numbering import series_id
from domain.settings import Settings


def test_a_long_series_is_loaded_from_its_latest_snapshot(database_url: str) -> None:
    Services.open(Settings(database_url=database_url), initialise=True).close()
    business = open_business(Settings(database_url=database_url))
    try:
        for _ in range(1203):
            with context.acting(CommandContext(actor="test")):
                series = business._series("TST", 2026)
                series.issue(uuid4())
                business.save(series)
        sid = series_id("TST", 2026)

        kept = [s.originator_version for s in business.snapshots.get(sid)]
    finally:
        business.close()

    assert kept == [500, 1000]
    again = open_business(Settings(database_url=database_url))  # nothing in memory
    try:
        read = []
        select = again.events.recorder.select_events

        def spy(originator_id, **kwargs):  # type: ignore[no-untyped-def]
            found = select(originator_id, **kwargs)
            read.extend(found)
            return found

        again.events.recorder.select_events = spy  # type: ignore[method-assign]
        series = again.repository.get(sid)
    finally:
        again.close()
    assert series.last == 1203
    assert series.version == 1204
    assert sorted(e.originator_version for e in read) == list(range(1204 - 500 + 1, 1205))


def test_other_aggregates_are_not_looked_up_among_snapshots(database_url: str) -> None:
    Services.open(Settings(database_url=database_url), initialise=True).close()
    business = open_business(Settings(database_url=database_url))
    try:
        asked = []
        select = business.snapshots.recorder.select_events

        def spy(originator_id, **kwargs):  # type: ignore[no-untyped-def]
            asked.append(originator_id)
            return select(originator_id, **kwargs)

        business.snapshots.recorder.select_events = spy  # type: ignore[method-assign]
        with context.acting(CommandContext(actor="test")):
            lead = business.capture_lead(name="Ayşe Yılmaz", source="web")
        business.repository.cache = None  # load it from the store
        assert business.repository.get(lead.id).name == "Ayşe Yılmaz"
    finally:
        business.close()
    assert asked == []
