"""The products, stock, quotes, orders and shipments read models are a pure function of the
events, on SQLite and PostgreSQL: after receipts, reservations, partial shipments and
cancellations followed live, a rebuild from position 0 (in one batch or in batches of three)
gives exactly the same rows, and the stock rows agree with the stock aggregates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select

from api.services import Services
from domain import context
from domain.core import Result
from domain.errors import DomainError
from domain.inventory.stock import StockItem
from projections.engine import Projection
from projections.runner import Runner
from tests.conftest import open_services

MINE = ("products", "stock", "quotes", "orders", "shipments")
TODAY = date(2026, 11, 27)


def mine(services: Services) -> list[Projection]:
    return [services.reads[name] for name in MINE]


def dump(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    with services.reads.reader.connect() as conn:
        for projection in mine(services):
            for table in projection.metadata.sorted_tables:
                query = select(table).order_by(*table.primary_key.columns)
                rows[table.name] = [tuple(r) for r in conn.execute(query).all()]
    return rows


def run_scenario(services: Services) -> int:
    """Receipts into two warehouses, quotes in every state, orders confirmed short and in
    full, partial shipments, a cancellation and an invoice; the read models follow each
    command as the live runner would. Returns how many commands were rejected."""
    b = services.business
    b.today = lambda: TODAY  # type: ignore[method-assign]
    live = Runner(b, services.reads, mine(services), batch_size=2)
    rejected = 0

    def do(command: Callable[..., Result], *args: Any, **kwargs: Any) -> Result | None:
        nonlocal rejected
        try:
            with context.acting(context.CommandContext(actor="tester")):
                result = command(*args, **kwargs)
        except DomainError:
            rejected += 1
            return None
        live.catch_up()
        return result

    def ok(command: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        result = do(command, *args, **kwargs)
        assert result is not None
        return result

    ok(b.open_warehouse, code="WEST", name="West")
    ok(b.define_product, sku="W-1", name="Widget", list_price=D(100), standard_cost=D(65))
    ok(b.define_product, sku="B-1", name="Bolt", list_price=D("0.35"), vat_rate_percent=D(10))
    ok(b.define_product, sku="S-1", name="Fitting", kind="service", list_price=D(50))
    buyer = ok(b.register_customer, name="Anadolu").id
    ok(b.receive_stock, lines=[{"sku": "W-1", "quantity": 10, "unit_cost": 60}])
    ok(
        b.receive_stock,
        lines=[
            {"sku": "W-1", "quantity": 10, "unit_cost": 70},
            {"sku": "B-1", "quantity": "1000", "unit_cost": "0.1234"},
        ],
    )
    ok(
        b.receive_stock,
        lines=[{"sku": "W-1", "quantity": 3, "unit_cost": "10.005"}],
        warehouse="WEST",
    )
    do(b.receive_stock, lines=[{"sku": "S-1", "quantity": 1, "unit_cost": 1}])  # rejected

    lines = [
        {"sku": "W-1", "quantity": 15},
        {"sku": "B-1", "quantity": 333},
        {"sku": "S-1", "quantity": 2},
    ]
    q1 = ok(b.create_quote, customer_id=buyer, lines=lines).id
    ok(b.send_quote, q1)
    ok(b.accept_quote, q1)
    q2 = ok(b.create_quote, customer_id=buyer, lines=lines[:1], valid_until=TODAY).id
    q3 = ok(
        b.revise_quote, q2, lines=[{"sku": "W-1", "quantity": 2, "discount_percent": "12.5"}]
    ).id
    ok(b.reject_quote, q3, "price")
    q4 = ok(b.create_quote, customer_id=buyer, lines=lines[1:], valid_until=TODAY).id
    ok(b.expire_quote, q4, TODAY + timedelta(days=1))

    first = ok(b.place_order, quote_id=q1).id
    do(b.place_order, quote_id=q1)  # rejected: ordered already
    ok(b.confirm_order, first)
    ok(b.ship_order, first, lines=[{"line": 1, "quantity": 4}, {"line": 3, "quantity": 1}])
    ok(b.ship_order, first, lines=[{"line": 2, "quantity": D("100.5")}])
    do(b.ship_order, first, lines=[{"line": 1, "quantity": 50}])  # rejected: more than open
    second = ok(b.place_order, customer_id=buyer, lines=[{"sku": "W-1", "quantity": 12}]).id
    ok(b.confirm_order, second)  # only 5 left to reserve
    ok(b.ship_order, second, lines=[{"line": 1, "quantity": 3}])
    ok(b.receive_stock, lines=[{"sku": "W-1", "quantity": 8, "unit_cost": "71.5"}])
    ok(b.cancel_order, second, "the rest is not needed")  # releases the 2 still reserved
    ok(b.ship_order, first)
    ok(b.invoice_order, first)
    west = ok(
        b.place_order, customer_id=buyer, lines=[{"sku": "W-1", "quantity": 3}], warehouse="WEST"
    ).id
    ok(b.confirm_order, west)
    for _ in range(3):
        ok(b.ship_order, west, lines=[{"line": 1, "quantity": 1}])
    third = ok(b.place_order, customer_id=buyer, lines=[{"sku": "B-1", "quantity": 10}]).id
    ok(b.confirm_order, third)
    ok(b.cancel_order, third)
    return rejected


def rebuild(services: Services, batch_size: int) -> int:
    for projection in mine(services):
        services.reads.reset(projection)
    return Runner(
        services.business, services.reads, mine(services), batch_size=batch_size
    ).catch_up()


@pytest.fixture(scope="module")
def services(shared_services: Services) -> Services:
    """One store per backend for the module: the scenario runs once, the tests look at it."""
    return shared_services


@pytest.fixture(scope="module")
def followed(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    assert run_scenario(services) == 3
    return dump(services)


def test_a_rebuild_from_zero_gives_exactly_the_rows_live_processing_gave(
    services: Services, followed: dict[str, list[tuple[Any, ...]]]
) -> None:
    assert rebuild(services, batch_size=1000) == services.business.recorder.max_notification_id()
    assert dump(services) == followed
    rebuild(services, batch_size=3)
    assert dump(services) == followed


def test_the_stock_rows_agree_with_the_stock_aggregates(
    services: Services, followed: dict[str, list[tuple[Any, ...]]]
) -> None:
    stock = services.reads["stock"]
    with services.reads.reader.connect() as conn:
        items = conn.execute(select(stock["items"])).mappings().all()
        assert len(items) == 3
        for row in items:
            item: StockItem = services.business.repository.get(row["item_id"])
            assert (row["on_hand"], row["reserved"], row["value"]) == (
                item.on_hand,
                item.reserved,
                item.value,
            )
            assert row["available"] == item.available
            layers = stock.fifo_layers(conn, row["product_id"], row["warehouse"])
            assert [(la.key, la.quantity, la.value) for la in layers] == [
                (la.key, la.quantity, la.value) for la in item.layers
            ]
    by_key = {(r["sku"], r["warehouse"]): r for r in items}
    # In: 10 at 60, 10 at 70, 8 at 71.50. Out: 4, 3 and 11: left 2 at 70 and 8 at 71.50.
    assert (by_key["W-1", "MAIN"]["on_hand"], by_key["W-1", "MAIN"]["value"]) == (D(10), D(712))
    assert (by_key["W-1", "WEST"]["on_hand"], by_key["W-1", "WEST"]["value"]) == (0, 0)
    assert (by_key["B-1", "MAIN"]["on_hand"], by_key["B-1", "MAIN"]["reserved"]) == (D(667), 0)
    assert by_key["B-1", "MAIN"]["value"] == D("82.31")


def test_orders_and_quotes_end_in_the_states_their_events_left_them(
    services: Services, followed: dict[str, list[tuple[Any, ...]]]
) -> None:
    quotes, orders = services.reads["quotes"], services.reads["orders"]
    with services.reads.reader.connect() as conn:
        statuses = conn.execute(select(quotes["quotes"].c.status)).scalars().all()
        rows = (
            conn.execute(select(orders["orders"]).order_by(orders["orders"].c.number))
            .mappings()
            .all()
        )
        lines = {
            (r["order_id"], r["line"]): r
            for r in conn.execute(select(orders["order_lines"])).mappings().all()
        }
    assert sorted(statuses) == ["accepted", "expired", "rejected", "revised"]
    states = [
        (r["status"], r["shipment_state"], r["invoice_state"], r["quantity_reserved"]) for r in rows
    ]
    assert states == [
        ("confirmed", "full", "full", D(0)),
        ("cancelled", "partial", "none", D(0)),
        ("confirmed", "full", "none", D(0)),
        ("cancelled", "none", "none", D(0)),
    ]
    first = rows[0]["id"]
    assert [(lines[first, n]["shipped"], lines[first, n]["invoiced"]) for n in (1, 2, 3)] == [
        (D(15), D(15)),
        (D(333), D(333)),
        (D(2), D(2)),
    ]
    assert len(followed[services.reads["shipments"]["shipments"].name]) == 7


def test_an_order_with_two_lines_of_one_product_lists_what_the_stock_holds_for_it(
    database_url: str,
) -> None:
    """The stock item holds one reservation per product for an order and a shipment releases
    from it whichever line shipped; the order lines must add up to the same (found while
    writing the model of tests/test_invariants.py, which checks this after every step: line 1
    kept showing 3 reserved while the stock held 1 for the order)."""
    with open_services(database_url) as services:
        b = services.business
        with context.acting(context.CommandContext(actor="tester")):
            b.define_product(sku="W-1", name="Widget", list_price=D(100))
            buyer = b.register_customer(name="Anadolu").id
            b.receive_stock(lines=[{"sku": "W-1", "quantity": 5, "unit_cost": 60}])
            order = b.place_order(
                customer_id=buyer,
                lines=[{"sku": "W-1", "quantity": 3}, {"sku": "W-1", "quantity": 4}],
            ).id
            b.confirm_order(order)  # reserves 3 for line 1 and the 2 left for line 2
            b.receive_stock(lines=[{"sku": "W-1", "quantity": 5, "unit_cost": 60}])
            b.ship_order(order, lines=[{"line": 2, "quantity": 4}])
        services.runner.catch_up()
        orders, stock = services.reads["orders"], services.reads["stock"]
        with services.reads.reader.connect() as conn:
            lines = (
                conn.execute(
                    select(orders["order_lines"].c.reserved).order_by(orders["order_lines"].c.line)
                )
                .scalars()
                .all()
            )
            listed = conn.execute(select(orders["orders"].c.quantity_reserved)).scalar_one()
            held = conn.execute(select(stock["items"].c.reserved)).scalar_one()
    assert held == D(1)
    assert lines == [D(1), D(0)]
    assert listed == held


# -- domain issues (these fail until the domain is fixed; see the report on issue 3) ---------


def test_a_discount_the_domain_accepts_is_one_the_read_models_can_hold() -> None:
    """The domain accepts a discount percent with any number of decimals (values.percent);
    the quotes and orders read models keep it to four (as quantities and prices, which the
    domain does bound). The API bounds it, but a quote recorded by any other caller with
    12.3456789 % cannot be projected: the write fails at flush, where the runner cannot tell
    which projection failed, so every read model stops."""
    with open_services("memory://") as services:
        b = services.business
        with context.acting(context.CommandContext(actor="tester")):
            b.define_product(sku="W-1", name="Widget", list_price=D(100))
            buyer = b.register_customer(name="Anadolu").id
            try:
                b.create_quote(
                    customer_id=buyer,
                    lines=[{"sku": "W-1", "quantity": 1, "discount_percent": "12.3456789"}],
                )
            except DomainError:
                return  # refused: nothing recorded that the read models cannot hold
        services.runner.catch_up()
        assert services.runner.failed == {}
