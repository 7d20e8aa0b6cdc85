"""A rebuild on PostgreSQL sends a flush's many new rows by COPY (projections/engine.py): the
rows it gives are exactly those an INSERT per row gives, for every read model of a whole demo
business (ids, amounts, dates, times, JSON documents, nulls). On SQLite the same rebuild,
with no COPY, holds it to the same answer."""

from __future__ import annotations

from datetime import date

import pytest

from projections import engine
from projections.runner import rebuild
from replay.demo import load_demo
from tests.conftest import read_model_rows


def test_rows_sent_by_copy_are_the_rows_inserted_one_by_one(
    services, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_demo(services.business, today=date(2026, 11, 27))
    services.runner.catch_up()  # live: a command's few rows at a time, by INSERT
    live = read_model_rows(services)
    assert sum(map(len, live.values())) > 500

    copies = 0
    copy = engine.Batch._copy

    def counted(batch: engine.Batch, sql: str, params: list) -> None:  # type: ignore[type-arg]
        nonlocal copies
        copies += 1
        copy(batch, sql, params)

    monkeypatch.setattr(engine.Batch, "_copy", counted)
    monkeypatch.setattr(engine, "COPY_FROM", 1)  # every new row by COPY
    projections = list(services.reads.projections.values())
    rebuild(services.business, services.reads, projections)

    assert read_model_rows(services) == live
    assert (copies > 0) == (services.reads.writer.dialect.name == "postgresql")
