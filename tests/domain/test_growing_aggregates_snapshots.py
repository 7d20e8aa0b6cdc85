"""A customer's receivables and a stock item gain events for as long as the business runs:
they are loaded from a snapshot taken every so many events, on the real stores, and come
back exactly as replaying every event makes them. (Number series: test_number_series_snapshots.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Repository

from api.services import Services
from domain import context
from domain.app import Business, open_business
from domain.billing.receivables import RECEIVABLES_SNAPSHOT_INTERVAL, receivable_id
from domain.context import CommandContext
from domain.inventory.stock import STOCK_SNAPSHOT_INTERVAL, StockItem, stock_id
from domain.settings import Settings


def recorded(
    database_url: str, steps: int, step: Callable[[Business, int], Any], aggregate_id: UUID
) -> tuple[list[int], Any]:
    """`steps` saves of `step(business, n)` on a fresh store; the versions of the snapshots
    kept, and the aggregate as the saving process holds it."""
    Services.open(Settings(database_url=database_url), initialise=True).close()
    business = open_business(Settings(database_url=database_url))
    try:
        for n in range(steps):
            with context.acting(CommandContext(actor="test")):
                business.save(step(business, n))
        kept = [s.originator_version for s in business.snapshots.get(aggregate_id)]
        return kept, business.repository.get(aggregate_id)
    finally:
        business.close()


def loaded_again(database_url: str, aggregate_id: UUID) -> tuple[Any, Any, list[int], int]:
    """In a new process's view (nothing in memory): the aggregate loaded as commands load
    it, the same replayed from its first event, the versions of the events the first load
    read and how many snapshots it read."""
    again = open_business(Settings(database_url=database_url))
    try:
        read: list[int] = []
        snapshots: list[int] = []
        events, kept = again.events.recorder, again.snapshots.recorder
        select, select_kept = events.select_events, kept.select_events

        def spy(originator_id, **kwargs):  # type: ignore[no-untyped-def]
            found = select(originator_id, **kwargs)
            read.extend(e.originator_version for e in found)
            return found

        def spy_kept(originator_id, **kwargs):  # type: ignore[no-untyped-def]
            found = select_kept(originator_id, **kwargs)
            snapshots.extend(e.originator_version for e in found)
            return found

        events.select_events, kept.select_events = spy, spy_kept  # type: ignore[method-assign]
        loaded = again.repository.get(aggregate_id)
        events.select_events, kept.select_events = select, select_kept  # type: ignore[method-assign]
        replayed = Repository(event_store=again.events).get(aggregate_id)
        return loaded, replayed, sorted(read), len(snapshots)
    finally:
        again.close()


def test_receivables_are_loaded_from_their_latest_snapshot(database_url: str) -> None:
    interval = RECEIVABLES_SNAPSHOT_INTERVAL
    customer = uuid4()
    first = date(2026, 1, 5)

    def step(business: Business, n: int) -> Any:
        account = business._receivables(customer)
        day = first + timedelta(n)
        if n == 2 * interval + 10:  # everything paid, credit left, part of it applied
            account.add_payment(uuid4(), Decimal(9000), account.allocate(Decimal(9000), None))
            account.add_invoice(uuid4(), "SAT9999999999999", day, day, Decimal(100))
        elif n % 3 == 2:  # a payment: the oldest open invoice, part of the next
            paid = Decimal(150) if n % 2 else Decimal(40)
            account.add_payment(uuid4(), paid, account.allocate(paid, None))
        else:
            account.add_invoice(uuid4(), f"SAT{n:013d}", day, day + timedelta(30), Decimal(100))
        return account

    account_id = receivable_id(customer)
    kept, live = recorded(database_url, 2 * interval + 11, step, account_id)

    assert kept[:2] == [interval, 2 * interval]
    assert live.credit > 0
    assert not live.items  # all paid: settled invoices leave the account
    loaded, replayed, read, snapshots = loaded_again(database_url, account_id)
    assert read == list(range(live.version - interval + 1, live.version + 1))  # the latest
    assert snapshots == 1
    for account in (loaded, replayed):
        assert account.version == live.version
        assert account.customer_id == live.customer_id
        assert account.credit == live.credit
        assert account.items == live.items
        assert account.open_items() == live.open_items()


def test_a_stock_item_is_loaded_from_its_latest_snapshot(database_url: str) -> None:
    interval = STOCK_SNAPSHOT_INTERVAL
    product, orders = uuid4(), [uuid4() for _ in range(3)]

    def step(business: Business, n: int) -> Any:
        item = business._find(StockItem, stock_id(product, "MAIN"))
        if item is None:
            return StockItem.track(product, "W-1", "MAIN")
        match n % 4:
            case 1:  # a receipt at a cost of its own: a new FIFO layer
                item.receive(uuid4(), 1, Decimal(5), Decimal(5 * (10 + n % 7)))
            case 2:
                item.reserve(orders[n % 3], Decimal(2))
            case 3:  # shipped against a reservation, across layers
                item.issue(uuid4(), Decimal(3), orders[(n - 1) % 3])
            case _:
                item.release(orders[n % 3])
        return item

    item_id = stock_id(product, "MAIN")
    kept, live = recorded(database_url, 2 * interval + 31, step, item_id)  # ends reserving

    assert kept[:1] == [interval]
    assert len(live.layers) > 1
    assert live.reservations
    loaded, replayed, read, snapshots = loaded_again(database_url, item_id)
    assert read == list(range(live.version - interval + 1, live.version + 1))
    assert snapshots == 1
    for item in (loaded, replayed):
        assert item.version == live.version
        assert (item.product_id, item.sku, item.warehouse) == (product, "W-1", "MAIN")
        assert item.layers == live.layers
        assert item.reservations == live.reservations
        assert (item.on_hand, item.value, item.available) == (
            live.on_hand,
            live.value,
            live.available,
        )


def test_a_short_history_is_read_in_one_query_and_a_lost_snapshot_costs_a_longer_load(
    database_url: str,
) -> None:
    """Fewer events than the interval: all of them come with the first query, no snapshot
    is looked for. A snapshot lost (a crash between a save and its snapshot): the load goes
    the long way, from an older snapshot or the first event, and is the same."""
    product = uuid4()
    item_id = stock_id(product, "MAIN")

    def step(business: Business, n: int) -> Any:
        item = business._find(StockItem, item_id) or StockItem.track(product, "W-1", "MAIN")
        if n:
            item.receive(uuid4(), 1, Decimal(1), Decimal(n))
        return item

    _, short = recorded(database_url, 12, step, item_id)
    loaded, _, read, snapshots = loaded_again(database_url, item_id)
    assert (read, snapshots) == (list(range(1, 13)), 0)
    assert loaded.layers == short.layers

    business = open_business(Settings(database_url=database_url))
    try:
        for n in range(12, STOCK_SNAPSHOT_INTERVAL + 40):
            with context.acting(CommandContext(actor="test")):
                business.save(step(business, n))
        live = business.repository.get(item_id)
        recorder = business.snapshots.recorder
        table = recorder.events_table_name
        if hasattr(recorder.datastore, "schema"):  # PostgreSQL
            table = f'"{recorder.datastore.schema}".{table}'
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {table}")
    finally:
        business.close()
    loaded, replayed, read, snapshots = loaded_again(database_url, item_id)
    assert read[0] == 1  # from the first event
    assert loaded.version == replayed.version == live.version
    assert loaded.layers == replayed.layers == live.layers
