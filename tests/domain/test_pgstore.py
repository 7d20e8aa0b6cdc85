"""The PostgreSQL recorder (domain/pgstore.py) against a real server, in a schema of its own:
the library's guarantees kept with one round trip per save."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from domain import context, core, pgstore
from domain.app import Business, open_business
from domain.context import CommandContext
from domain.errors import RuleViolation
from domain.pgstore import TekilPostgresRecorder, check_idle_connection
from domain.settings import Settings, postgres_params, store_env

TOPIC = "tests.pgstore:Event"


def _connect(url: str) -> psycopg.Connection[Any]:
    pg = postgres_params(url)
    conn = psycopg.connect(
        dbname=pg["dbname"],
        host=pg["host"],
        port=pg["port"],
        user=pg["user"],
        password=pg["password"],
        autocommit=True,
    )
    conn.execute(f'SET search_path TO "{pg["schema"]}"')
    return conn


@pytest.fixture
def business(postgresql_url: str) -> Iterator[Business]:
    business = open_business(Settings(database_url=postgresql_url), create_tables=True)
    try:
        yield business
    finally:
        business.close()


@pytest.fixture
def recorder(business: Business) -> TekilPostgresRecorder:
    assert isinstance(business.recorder, TekilPostgresRecorder)
    return business.recorder


def event(originator_id: uuid.UUID | None = None, version: int = 1) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id or uuid.uuid4(),
        originator_version=version,
        topic=TOPIC,
        state=b'{"n":' + str(version).encode() + b"}",
    )


def positions(recorder: TekilPostgresRecorder) -> list[tuple[int, uuid.UUID, int]]:
    return [
        (n.id, n.originator_id, n.originator_version)
        for n in recorder.select_notifications(start=1, limit=100_000)
    ]


def test_the_postgresql_store_uses_the_recorder_without_pre_ping(business: Business) -> None:
    env = store_env("postgresql://postgres@127.0.0.1:5432/test")
    assert env["APPLICATION_RECORDER_TOPIC"] == pgstore.TOPIC
    assert env["POSTGRES_PRE_PING"] == "no"
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env
    recorder = business.recorder
    assert type(recorder) is TekilPostgresRecorder
    assert not recorder.datastore.enable_db_functions
    assert recorder.datastore.pool._check is check_idle_connection


def test_one_event_gets_the_next_position(recorder: TekilPostgresRecorder) -> None:
    first = event()
    assert recorder.insert_events([first]) == [1]
    assert recorder.insert_events([event()]) == [2]
    assert recorder.max_notification_id() == 2
    assert recorder.select_events(first.originator_id) == [first]


def test_several_events_get_their_positions_in_the_order_given(
    recorder: TekilPostgresRecorder,
) -> None:
    recorder.insert_events([event()])
    a, b = uuid.uuid4(), uuid.uuid4()
    # Interleaved aggregates, and ids that do not sort in the order given.
    events = [event(b, 1), event(a, 1), event(b, 2), event(a, 2), event(b, 3)]
    ids = recorder.insert_events(events)
    assert ids == [2, 3, 4, 5, 6]
    stored = positions(recorder)[1:]
    assert stored == [
        (i, e.originator_id, e.originator_version) for i, e in zip(ids, events, strict=True)
    ]
    assert recorder.select_events(b) == [events[0], events[2], events[4]]
    assert recorder.select_events(b, gt=1, lte=2) == [events[2]]
    assert recorder.select_events(b, desc=True, limit=1) == [events[4]]


def test_a_multi_aggregate_save_answers_with_its_positions(business: Business) -> None:
    with context.acting(CommandContext(actor="ayse")):
        lead = business.capture_lead(name="Ada", company="Ada A.Ş.", source="web")
        before = business.recorder.max_notification_id() or 0
        activity = business.log_activity(
            kind="call", subject="intro", regarding="lead", regarding_id=lead.id
        )
    head = business.recorder.max_notification_id()
    assert activity.position == head
    recorded = business.recorder.select_notifications(start=before + 1, limit=100)
    assert [n.id for n in recorded] == list(range(before + 1, head + 1))


def test_a_duplicate_version_raises_integrity_error_and_records_nothing(
    business: Business, postgresql_url: str
) -> None:
    # NOTIFY channels are per database, not per schema: a table name of its own keeps the
    # other tests' saves (in other schemas, in parallel) out of this test's channel.
    recorder = TekilPostgresRecorder(
        business.recorder.datastore, events_table_name=f"events_{uuid.uuid4().hex[:12]}"
    )
    recorder.create_table()
    taken = event()
    recorder.insert_events([taken])
    with _connect(postgresql_url) as listener:
        listener.execute(f'LISTEN "{recorder.channel_name}"')
        fresh = event()
        with pytest.raises(IntegrityError, match="duplicate key"):
            recorder.insert_events([event(taken.originator_id)])
        with pytest.raises(IntegrityError, match="duplicate key"):
            recorder.insert_events([fresh, event(taken.originator_id)])  # the second clashes
        # Nothing of either save was recorded, and nobody was told about them.
        assert positions(recorder) == [(1, taken.originator_id, 1)]
        assert recorder.select_events(fresh.originator_id) == []
        assert list(listener.notifies(timeout=0.3)) == []
    # The store goes on (the failed saves used up positions, as any rollback does: gaps that
    # are never filled, which readers may pass over).
    (position,) = recorder.insert_events([fresh]) or []
    assert position > 2
    assert positions(recorder) == [(1, taken.originator_id, 1), (position, fresh.originator_id, 1)]


def test_a_save_notifies_a_listening_connection(
    recorder: TekilPostgresRecorder, postgresql_url: str
) -> None:
    with _connect(postgresql_url) as listener:
        listener.execute(f'LISTEN "{recorder.channel_name}"')
        recorder.insert_events([event()])
        # (Other stores of this database, in other schemas, share the channel: their saves
        # may arrive in the same read; the test asks that this one's does.)
        received = list(listener.notifies(timeout=5, stop_after=1))
        assert received
        assert {n.channel for n in received} == {recorder.channel_name}
        recorder.insert_events([event(), event()])
        received = list(listener.notifies(timeout=5, stop_after=1))
        assert received
        assert {n.channel for n in received} == {recorder.channel_name}


def test_a_save_waits_for_an_uncommitted_insert_of_another_transaction(
    recorder: TekilPostgresRecorder, postgresql_url: str
) -> None:
    """The table lock: a save never takes a position while an earlier insert (here one that
    skipped the lock) is uncommitted, so positions are committed in order."""
    done = threading.Event()
    answer: list[Any] = []
    table = recorder.events_table_name
    with _connect(postgresql_url) as other:
        with other.transaction():
            other.execute(
                f'INSERT INTO "{table}" (originator_id, originator_version, topic, state) '
                "VALUES (%s, 1, %s, %s)",
                (uuid.uuid4(), TOPIC, b"{}"),
            )

            def save() -> None:
                answer.extend(recorder.insert_events([event()]))
                done.set()

            thread = threading.Thread(target=save)
            thread.start()
            assert not done.wait(0.5)  # blocked behind the uncommitted insert
        thread.join(10)
    assert done.is_set()
    assert answer == [2]


def test_concurrent_saves_commit_in_position_order(recorder: TekilPostgresRecorder) -> None:
    """Writers in several threads, and a reader following the log meanwhile as projections
    do: every position it sees has all earlier positions before it (no gap is ever visible,
    as none is filled in later), and in the end it has seen every event, each once."""
    writers, saves = 4, 60
    stop = threading.Event()
    errors: list[BaseException] = []
    followed: list[int] = []
    answered: list[int] = []
    lock = threading.Lock()

    def write(w: int) -> None:
        try:
            for i in range(saves):
                batch = [event(uuid.uuid4()) for _ in range(1 + (w + i) % 3)]
                ids = recorder.insert_events(batch)
                assert ids is not None
                assert ids == list(range(ids[0], ids[0] + len(batch)))
                with lock:
                    answered.extend(ids)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def follow() -> None:
        try:
            last = 0
            while True:
                finished = stop.is_set()
                page = recorder.select_notifications(start=last + 1, limit=1000)
                for n in page:
                    assert n.id == last + 1, f"position {n.id} seen before {last + 1}"
                    last = n.id
                    followed.append(n.id)
                if finished and not page:
                    return
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    reader.join(60)
    assert not errors, errors
    total = sum(1 + (w + i) % 3 for w in range(writers) for i in range(saves))
    assert sorted(answered) == list(range(1, total + 1))
    assert followed == list(range(1, total + 1))


def _terminate(url: str, pids: set[int]) -> None:
    """Have the server terminate these sessions, and wait until they are gone."""
    with _connect(url) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a store call that fails and is retried fails the test."""

    def no_retries(seconds: float) -> None:
        raise AssertionError("a store call failed and was retried")

    monkeypatch.setattr("eventsourcing.utils.sleep", no_retries)


def test_a_connection_the_server_closed_while_idle_is_replaced_unnoticed(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a ping per checkout, the pool looks at each connection's socket: those the
    server has terminated are replaced before use (no error, no retry)."""
    business = open_business(
        Settings(database_url=postgresql_url),
        create_tables=True,
        POSTGRES_POOL_SIZE="2",
        POSTGRES_MAX_OVERFLOW="0",
    )
    try:
        recorder = business.recorder
        pool = recorder.datastore.pool
        pool.wait(10)
        pids = set()
        for _ in range(2):  # the pool hands its connections out in turn
            with pool.connection() as conn:
                pids.add(conn.info.backend_pid)
        assert len(pids) == 2
        _terminate(postgresql_url, pids)
        _no_retries(monkeypatch)
        assert recorder.insert_events([event()]) == [1]
        assert recorder.max_notification_id() == 1
        assert len(recorder.select_events(uuid.uuid4())) == 0
        with pool.connection() as conn:
            assert conn.info.backend_pid not in pids
    finally:
        business.close()


def test_saves_go_through_one_kept_connection_replaced_when_the_server_drops_it(
    recorder: TekilPostgresRecorder, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No checkout from the pool per save: one connection is kept for writing; one the
    server terminated between saves is replaced before the next (no error, no retry)."""
    assert recorder.insert_events([event()]) == [1]
    kept = recorder._writer
    assert kept is not None
    assert recorder.insert_events([event(), event()]) == [2, 3]
    assert recorder._writer is kept
    pid = kept.info.backend_pid
    _terminate(postgresql_url, {pid})
    _no_retries(monkeypatch)
    assert recorder.insert_events([event()]) == [4]
    assert recorder._writer is not None
    assert recorder._writer.info.backend_pid != pid


def test_a_kept_connection_that_lost_its_prepared_statements_prepares_them_again(
    recorder: TekilPostgresRecorder,
) -> None:
    """The insert is a statement prepared once on the connection kept for writing; should it
    be gone (a DEALLOCATE on that connection), the save prepares it again."""
    assert recorder.insert_events([event()]) == [1]
    kept = recorder._writer
    assert kept is not None
    kept.execute("DEALLOCATE ALL")
    assert recorder.insert_events([event()]) == [2]
    assert recorder.insert_events([event(), event()]) == [3, 4]
    assert recorder._writer is kept


def test_text_originator_ids_are_recorded_and_checked_too(postgresql_url: str) -> None:
    business = open_business(
        Settings(database_url=postgresql_url), create_tables=True, ORIGINATOR_ID_TYPE="text"
    )
    try:
        recorder = business.recorder
        assert isinstance(recorder, TekilPostgresRecorder)
        assert recorder.datastore.originator_id_type == "text"
        first, second = event(), event()
        assert recorder.insert_events([first]) == [1]
        assert recorder.insert_events([second, event(second.originator_id, 2)]) == [2, 3]
        assert [n.originator_version for n in recorder.select_notifications(1, 10)] == [1, 1, 2]
        token = pgstore.reads.set([(second.originator_id, 1)])
        try:
            with pytest.raises(pgstore.StaleRead):
                recorder.insert_events([event()])
        finally:
            pgstore.reads.reset(token)
        assert recorder.max_notification_id() == 3
    finally:
        business.close()


def test_without_the_functions_the_library_insert_is_used(
    recorder: TekilPostgresRecorder, postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store initialised before the functions existed keeps working (more slowly)."""
    with _connect(postgresql_url) as admin:
        admin.execute(f'DROP FUNCTION "{recorder.insert_one_function_name}"')
        admin.execute(f'DROP FUNCTION "{recorder.insert_many_function_name}"')
        admin.execute(f'LISTEN "{recorder.channel_name}"')
        assert recorder.insert_events([event()]) == [1]
        assert recorder.insert_events([event(), event()]) == [2, 3]
        assert "tekil db init" in caplog.text
        assert list(admin.notifies(timeout=5, stop_after=1))
    taken = positions(recorder)[0]
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(taken[1])])
    # `tekil db init` creates them again (and may be repeated).
    open_business(Settings(database_url=postgresql_url), create_tables=True).close()
    open_business(Settings(database_url=postgresql_url), create_tables=True).close()
    recorder._functions_missing_until = 0.0  # as if the minute before looking again had passed
    (position,) = recorder.insert_events([event()]) or []
    assert position == recorder.max_notification_id()
    assert recorder._functions_missing_until == 0.0  # found them


def test_the_library_recorder_still_reads_what_this_one_wrote(
    recorder: TekilPostgresRecorder, postgresql_url: str
) -> None:
    events = [event(), event()]
    recorder.insert_events(events)
    library = open_business(Settings(database_url=postgresql_url), APPLICATION_RECORDER_TOPIC="")
    try:
        assert type(library.recorder) is PostgresApplicationRecorder
        assert library.recorder.select_events(events[1].originator_id) == [events[1]]
        assert library.recorder.insert_events([event()]) == [3]
    finally:
        library.close()


# -- what a command read is checked at its save ------------------------------------------------


@pytest.mark.parametrize("functions", [True, False], ids=["one-statement", "without-functions"])
def test_a_save_whose_reads_changed_records_nothing(
    recorder: TekilPostgresRecorder, postgresql_url: str, functions: bool
) -> None:
    read = event()
    recorder.insert_events([read])
    if not functions:  # a store initialised before the functions: checked before the insert
        with _connect(postgresql_url) as admin:
            admin.execute(f'DROP FUNCTION "{recorder.insert_one_function_name}"')
            admin.execute(f'DROP FUNCTION "{recorder.insert_many_function_name}"')
    # Read at version 1 and still there: recorded.
    token = pgstore.reads.set([(read.originator_id, 1)])
    try:
        assert recorder.insert_events([event()]) == [2]
    finally:
        pgstore.reads.reset(token)
    recorder.insert_events([event(read.originator_id, 2)])  # someone changes what was read
    before = positions(recorder)
    for saved in ([event()], [event(), event()]):
        token = pgstore.reads.set([(uuid.uuid4(), 3), (read.originator_id, 1)])
        try:
            with pytest.raises(pgstore.StaleRead, match="changed since it was read"):
                recorder.insert_events(saved)
        finally:
            pgstore.reads.reset(token)
    assert positions(recorder) == before
    assert isinstance(pgstore.StaleRead(), IntegrityError)  # what a command retries on


def _two_processes(url: str) -> tuple[Business, Business]:
    """Two applications on one store, each with its own connections and aggregate cache, as
    two API processes have."""
    return open_business(Settings(database_url=url)), open_business(Settings(database_url=url))


def test_the_cache_is_used_and_a_change_by_another_process_is_caught_at_save(
    business: Business, postgresql_url: str
) -> None:
    """A command that reads a lead it does not change (logging an activity about it) after
    another process changed the lead: the store refuses the save, the command is decided
    again from the store, and succeeds."""
    a, b = _two_processes(postgresql_url)
    try:
        assert a.repository.cache is not None
        with context.acting(CommandContext(actor="ayse")):
            lead = a.capture_lead(name="Ada", company="Ada A.Ş.", source="web")
            a.log_activity(kind="call", subject="intro", regarding="lead", regarding_id=lead.id)
            assert lead.id in a.repository.cache.cache  # type: ignore[attr-defined]
            reads = a.recorder.select_events  # count the loads from the store
            loads: list[Any] = []

            def counted(originator_id: Any, **kwargs: Any) -> Any:
                loads.append(originator_id)
                return reads(originator_id, **kwargs)

            a.recorder.select_events = counted  # type: ignore[method-assign]
            a.log_activity(
                kind="note", subject="from memory", regarding="lead", regarding_id=lead.id
            )
            assert loads == []  # the lead came from the cache
            b.qualify_lead(lead.id)  # the other process
            before = a.recorder.max_notification_id()
            done = a.log_activity(
                kind="call", subject="again", regarding="lead", regarding_id=lead.id
            )
            assert loads == [lead.id]  # the refused save made it read again
        assert done.position == before + 1  # recorded once
        assert a.repository.get(lead.id).version == 2
    finally:
        a.close()
        b.close()


def test_a_record_another_process_keeps_changing_is_read_afresh_instead_of_refused(
    business: Business, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API processes numbering quotes: the series is changed by each in turn. The first
    time a process finds its remembered series behind, its save is refused and the command
    decided again; from then on it reads the series' new events before numbering, and is not
    refused again."""
    a, b = _two_processes(postgresql_url)
    lost: list[float] = []
    uniform = core.random.uniform
    monkeypatch.setattr(core.random, "uniform", lambda *r: lost.append(r[1]) or uniform(*r))
    try:
        a.ensure_defaults()
        with context.acting(CommandContext(actor="satis")):
            a.define_product(sku="W-1", name="Widget", list_price=Decimal(100))
            customer = a.register_customer(name="Acme", payment_terms_days=30).id
            lines = [{"sku": "W-1", "quantity": 1}]
            numbers = [a.create_quote(customer_id=customer, lines=lines).extra["number"]]
            numbers.append(b.create_quote(customer_id=customer, lines=lines).extra["number"])
            numbers.append(a.create_quote(customer_id=customer, lines=lines).extra["number"])
            assert len(lost) == 1  # A numbered from memory, was refused, and decided again
            numbers.append(b.create_quote(customer_id=customer, lines=lines).extra["number"])
            assert len(lost) == 2  # so was B
            for _ in range(3):
                numbers.append(a.create_quote(customer_id=customer, lines=lines).extra["number"])
                numbers.append(b.create_quote(customer_id=customer, lines=lines).extra["number"])
        assert len(lost) == 2  # and then each read the series afresh
        assert numbers == sorted(numbers)
        assert len(set(numbers)) == len(numbers) == 10
    finally:
        a.close()
        b.close()


def test_a_refusal_decided_on_remembered_state_is_checked_against_the_store(
    business: Business, postgresql_url: str
) -> None:
    """Process A remembers 5 units in stock; process B receives 3 more; A ships 8. On what A
    remembered that is refused, but the store says 8 are there: the command is decided again
    from the store and ships."""
    a, b = _two_processes(postgresql_url)
    try:
        a.ensure_defaults()
        with context.acting(CommandContext(actor="depo")):
            a.define_product(sku="W-1", name="Widget", list_price=Decimal(100))
            customer = a.register_customer(name="Acme", payment_terms_days=30).id
            a.receive_stock(lines=[{"sku": "W-1", "quantity": 5, "unit_cost": 60}])
            quote = a.create_quote(customer_id=customer, lines=[{"sku": "W-1", "quantity": 8}])
            a.accept_quote(quote.id)
            order = a.place_order(quote_id=quote.id)
            a.confirm_order(order.id)
            b.receive_stock(lines=[{"sku": "W-1", "quantity": 3, "unit_cost": 70}])
            shipped = a.ship_order(order.id, lines=[{"line": 1, "quantity": 8}])
        assert shipped.position == a.recorder.max_notification_id()
        # And a refusal the store agrees with stays a refusal (decided twice, refused twice).
        with (
            context.acting(CommandContext(actor="depo")),
            pytest.raises(RuleViolation),
        ):
            a.ship_order(order.id, lines=[{"line": 1, "quantity": 1}])
    finally:
        a.close()
        b.close()
