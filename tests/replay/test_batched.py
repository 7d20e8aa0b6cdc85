"""A BatchedBusiness writes many commands' events per transaction, and leaves the store as
saving them one by one would: the same events, at the positions it answered, and the number
series' snapshots a save takes every 500 numbers."""

from __future__ import annotations

from uuid import uuid4

from api.services import Services
from domain import context
from domain.app import open_business
from domain.context import CommandContext
from domain.numbering import series_id
from domain.settings import Settings
from replay.batched import BatchedBusiness


def test_a_batched_series_gets_the_snapshots_a_save_would_take(sqlite_url: str) -> None:
    Services.open(Settings(database_url=sqlite_url), initialise=True).close()
    batched = BatchedBusiness(env=Settings(database_url=sqlite_url).store_env())
    try:
        for n in range(1203):
            with context.acting(CommandContext(actor="test")):
                series = batched._series("TST", 2026)
                series.issue(uuid4())
                recorded = batched.save(series)
            if n % 100 == 99:
                batched.flush()
        batched.flush()
        head = batched.head
    finally:
        batched.close()

    again = open_business(Settings(database_url=sqlite_url))  # nothing in memory
    try:
        sid = series_id("TST", 2026)
        kept = [s.originator_version for s in again.snapshots.get(sid)]
        series = again.repository.get(sid)
        assert again.recorder.max_notification_id() == head
    finally:
        again.close()
    assert kept == [500, 1000]
    assert recorded[-1].notification.id == head
    assert (series.last, series.version) == (1203, 1204)
