"""A catch-up far behind the head has PostgreSQL gather the events table's statistics first:
without them the planner took each page of the log for a few rows, gathering and sorting
every row from the page's start to the head (projections/eventlog.py `analyze_log`)."""

from __future__ import annotations

from datetime import date

import pytest

from projections import runner
from replay.demo import load_demo


def _statistics(services) -> int:  # type: ignore[no-untyped-def]
    """The columns of the events table PostgreSQL holds statistics of."""
    recorder = services.business.recorder
    with recorder.datastore.get_connection() as conn:
        found = conn.execute(
            "SELECT COUNT(*) AS n FROM pg_stats WHERE schemaname = %s AND tablename = %s",
            (recorder.datastore.schema, recorder.events_table_name),
        ).fetchone()
    return int(found["n"])


@pytest.mark.parametrize("behind", [True, False])
def test_a_catch_up_far_behind_gathers_the_logs_statistics_first(
    services, monkeypatch: pytest.MonkeyPatch, behind: bool
) -> None:
    load_demo(services.business, today=date(2026, 11, 27))
    head = services.business.recorder.max_notification_id()
    monkeypatch.setattr(runner, "ANALYZE_BEHIND", head if behind else head + 1)
    postgres = services.reads.writer.dialect.name == "postgresql"
    analyzed: list[bool] = []
    gather = runner.analyze_log
    monkeypatch.setattr(runner, "analyze_log", lambda r: analyzed.append(gather(r)) or True)

    services.runner.catch_up()

    assert analyzed == ([postgres] if behind else [])
    if postgres and behind:  # (not behind, autovacuum may have come by meanwhile: not asked)
        assert _statistics(services) > 0
    assert min(services.reads.positions().values()) == head
