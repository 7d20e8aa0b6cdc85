"""The SQLite recorder (domain/sqlitestore.py) on a real file: the library's guarantees kept
through a connection of its own, and the aggregate cache told when somebody else wrote."""

from __future__ import annotations

import pathlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.app import Business, open_business
from domain.settings import Settings, sqlite_path
from domain.sqlitestore import TekilSQLiteRecorder
from tests.domain.conftest import run

TOPIC = "tests.sqlitestore:Event"


def event(originator_id: uuid.UUID | None = None, version: int = 1) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id or uuid.uuid4(),
        originator_version=version,
        topic=TOPIC,
        state=b"{}",
    )


@pytest.fixture
def business(sqlite_url: str) -> Iterator[Business]:
    business = open_business(Settings(database_url=sqlite_url), create_tables=True)
    try:
        yield business
    finally:
        business.close()


@pytest.fixture
def recorder(business: Business) -> TekilSQLiteRecorder:
    assert isinstance(business.recorder, TekilSQLiteRecorder)
    return business.recorder


def test_positions_come_back_in_the_order_of_the_events(recorder: TekilSQLiteRecorder) -> None:
    assert recorder.insert_events([event()]) == [1]
    assert recorder.insert_events([event(), event(), event()]) == [2, 3, 4]
    assert recorder.max_notification_id() == 4


def test_a_clash_records_none_of_the_save_and_says_so(recorder: TekilSQLiteRecorder) -> None:
    taken = event()
    recorder.insert_events([taken])
    fresh = event()
    with pytest.raises(IntegrityError):
        recorder.insert_events([fresh, event(taken.originator_id)])  # the second clashes
    assert recorder.max_notification_id() == 1
    assert list(recorder.select_events(fresh.originator_id)) == []
    # The connection is usable again, and positions carry on without a gap.
    assert recorder.insert_events([fresh]) == [2]


def test_a_closed_store_reopens_with_everything_it_acknowledged(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url)
    first = open_business(settings, create_tables=True)
    recorded = first.recorder.insert_events([event(), event()])
    first.close()
    again = open_business(settings)
    try:
        assert recorded == [1, 2]
        assert again.recorder.max_notification_id() == 2
    finally:
        again.close()


def test_the_count_of_others_writes_moves_only_when_another_connection_commits(
    recorder: TekilSQLiteRecorder, sqlite_url: str
) -> None:
    before = recorder.others_wrote()
    recorder.insert_events([event()])
    assert recorder.others_wrote() == before  # its own commits do not count
    other = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    try:
        other.execute("CREATE TABLE read_model (x)")
        other.execute("INSERT INTO read_model VALUES (1)")
    finally:
        other.close()
    assert recorder.others_wrote() != before


def _lead_with_open_activity(business: Business) -> uuid.UUID:
    lead = run(business.capture_lead, name="Deniz Kaya", source="web")
    return run(
        business.log_activity,
        kind="call",
        subject="first call",
        regarding="lead",
        regarding_id=lead.id,
    ).id


def test_a_write_by_another_process_reaches_this_ones_next_command(
    business: Business, sqlite_url: str
) -> None:
    run(business.ensure_defaults)  # the MAIN warehouse
    customer = run(business.register_customer, name="Deniz Kaya A.Ş.").id
    product = run(
        business.define_product,
        sku="SKU-1",
        name="Vana",
        list_price=Decimal(100),
        standard_cost=Decimal(60),
    ).id
    line = {"product_id": product, "quantity": Decimal(1)}
    quote = run(business.create_quote, customer_id=customer, lines=[line]).id  # cached: draft
    other = open_business(Settings(database_url=sqlite_url))
    try:
        run(other.accept_quote, quote)
    finally:
        other.close()
    # Decided on the store's state (accepted), not on the cached one (a draft cannot be
    # ordered): no save of this process would have clashed to tell it.
    order = run(business.place_order, quote_id=quote)
    assert business.repository.get(order.id).quote_id == quote


def test_while_nobody_else_writes_the_cache_is_trusted_without_reading_the_head(
    business: Business, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    activity = _lead_with_open_activity(business)
    looks = []
    repository = business.repository
    head = repository._head  # type: ignore[attr-defined]
    monkeypatch.setattr(repository, "_head", lambda: looks.append(1) or head())
    cached = repository.get(activity)
    run(business.complete_activity, activity)
    assert looks == []  # only this process wrote: the cache is right without reading the head
    assert repository.get(activity) is cached
    # A read model's write (another connection, not the events table): one look, cache kept.
    other = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    try:
        other.execute("CREATE TABLE read_model (x)")
    finally:
        other.close()
    assert repository.get(activity) is cached
    assert looks == [1]


def test_a_save_after_another_process_recorded_events_is_decided_again_from_the_store(
    business: Business, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads within a command take the cache as it is; the save's write transaction finds
    that someone else recorded events since, records nothing, and the command is decided
    again on aggregates read afresh."""
    activity = _lead_with_open_activity(business)
    cached = business.repository.get(activity)
    other = open_business(Settings(database_url=sqlite_url))
    try:
        run(other.capture_lead, name="Somebody Else", source="web")  # not the activity
    finally:
        other.close()
    decided: list[object] = []
    complete = type(cached).complete
    monkeypatch.setattr(
        type(cached), "complete", lambda self: decided.append(self) or complete(self)
    )

    done = run(business.complete_activity, activity)

    assert decided[0] is cached  # first decided on the cached activity ...
    assert len(decided) == 2  # ... then again,
    assert decided[1] is not cached  # on one read afresh
    assert done.version == 2
    assert business.recorder.max_notification_id() == done.position


def test_a_save_after_others_wrote_only_read_models_keeps_the_cache(
    business: Business, sqlite_url: str
) -> None:
    activity = _lead_with_open_activity(business)
    cached = business.repository.get(activity)
    other = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    try:
        other.execute("CREATE TABLE read_model (x)")  # a commit, but no events
    finally:
        other.close()

    run(business.complete_activity, activity)

    assert business.repository.get(activity) is cached
    assert cached.done


def _wal_frames(path: str) -> tuple[int, int]:
    """(frames in the WAL, frames of it already copied into the database file), from a
    connection of its own. A passive checkpoint does not wait for one running beside it (the
    checkpointer's): it answers busy, with -1 frames, and is asked again."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy or time.monotonic() > deadline:
                return frames, copied
            time.sleep(0.01)
    finally:
        conn.close()


def test_commits_leave_checkpoints_to_a_thread_of_their_own(
    recorder: TekilSQLiteRecorder, sqlite_url: str
) -> None:
    """The writing connection never checkpoints (the commit crossing 1,000 pages would wait
    for it); the checkpointer copies what was committed soon after, and once more when the
    store closes."""
    recorder.insert_events([event()])
    assert recorder._writer is not None
    assert recorder._writer.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    checkpointer = recorder.checkpointer
    checkpointer.every = 0.01
    done = checkpointer.checkpoints
    for _ in range(30):
        recorder.insert_events([event() for _ in range(40)])
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints == done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpointer.checkpoints > done
    path = sqlite_path(sqlite_url)
    frames, copied = _wal_frames(str(path))
    assert frames > 0
    assert copied == frames
    recorder.insert_events([event()])
    recorder.close()
    assert recorder.checkpointer._thread is None
    assert recorder.max_notification_id() == 30 * 40 + 2


def test_steady_writes_do_not_grow_the_wal_without_end(sqlite_url: str) -> None:
    """Writes one after the other, with a reader in between: a checkpoint running beside
    them seldom finishes before the next commit, and SQLite starts the WAL again only after
    one did. Past `restart_pages` the checkpointer waits for the writer (RESTART), and the
    WAL file stays within a bound."""
    business = open_business(Settings(database_url=sqlite_url), create_tables=True)
    recorder = business.recorder
    assert isinstance(recorder, TekilSQLiteRecorder)
    recorder.insert_events([event()])
    checkpointer = recorder.checkpointer
    checkpointer.every, checkpointer.restart_pages = 0.0, 200
    path = str(sqlite_path(sqlite_url))
    reader = sqlite3.connect(path, isolation_level=None)
    wal = pathlib.Path(path + "-wal")
    largest = 0
    try:
        for _ in range(1500):
            recorder.insert_events([event() for _ in range(20)])
            reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()
            largest = max(largest, wal.stat().st_size)
    finally:
        reader.close()
        business.close()
    assert largest < 8 * 200 * 4096  # a few times the bound's pages, not 30,000 events' worth
