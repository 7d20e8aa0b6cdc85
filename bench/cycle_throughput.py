"""Command throughput through the Application, per command type and for the whole
order-to-cash cycle, beside the raw INSERT rate of the same database in the same run.

The cycle: create a quote, send it, accept it, place the order from it, confirm it (reserving
stock), ship it (FIFO cost, journal entry), invoice it (numbered, journal entry, receivables)
and receive the payment — eight commands, each timed alone. `complete_activity` (one stored
event) is timed beside them as the single-event reference of bench/command_throughput.py.
Products, stock and customers are set up first, untimed; no projection runner runs.

The references, in blocks that take turns with the cycles (so that both see the same moments
of the disk and of the machine): raw INSERTs into a table of the shape of the store's events
table, one row per transaction and `batch` rows per transaction (bench/command_throughput.py's
RawSQLite and RawPostgres). Ratios are taken per run; medians are reported.

Run:  .venv/bin/python -m bench.cycle_throughput --backend sqlite --cycles 300 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from api.services import Services
from bench.command_throughput import (
    RawPostgres,
    RawSQLite,
    acting,
    sample_event,
    set_up,
    store_synchronous,
)
from bench.harness import DEFAULT_PG_URL, print_machine, store
from domain.app import Business
from domain.settings import Settings

CYCLE = (
    "create_quote",
    "send_quote",
    "accept_quote",
    "place_order",
    "confirm_order",
    "ship_order",
    "invoice_order",
    "receive_payment",
)
SINGLE = "complete_activity"
PRICE = Decimal(100)  # list price; VAT 20 %: an invoice of one unit is 120.00


def prepare(business: Business, customers: int, products: int) -> tuple[list[Any], list[Any]]:
    """Products with ample stock and customers (untimed)."""
    with acting():
        goods = [
            business.define_product(
                sku=f"BENCH-{i:03d}",
                name=f"Bench product {i}",
                list_price=PRICE,
                standard_cost=Decimal(60),
            ).id
            for i in range(products)
        ]
        business.receive_stock(
            lines=[
                {"product_id": p, "quantity": Decimal(1_000_000), "unit_cost": Decimal(60)}
                for p in goods
            ]
        )
        buyers = [
            business.register_customer(name=f"Bench Müşteri {i:03d} A.Ş.").id
            for i in range(customers)
        ]
    return buyers, goods


class Clock:
    """Wall-clock seconds and positions answered, per command name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys([*CYCLE, SINGLE], 0.0)
        self.count: dict[str, int] = dict.fromkeys([*CYCLE, SINGLE], 0)
        self.events: dict[str, list[int]] = {name: [] for name in [*CYCLE, SINGLE]}
        self.last_position = 0

    def run(self, name: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        with acting():
            began = time.perf_counter()
            result = command(*args, **kwargs)
            took = time.perf_counter() - began
        self.seconds[name] += took
        self.count[name] += 1
        # One writing process: positions are contiguous, so the gap is what it recorded.
        if self.last_position:
            self.events[name].append(result.position - self.last_position)
        self.last_position = result.position
        return result


def cycle(b: Business, clock: Clock, customer: Any, product: Any, activity: Any) -> None:
    line = {"product_id": product, "quantity": Decimal(1)}
    quote = clock.run("create_quote", b.create_quote, customer_id=customer, lines=[line])
    clock.run("send_quote", b.send_quote, quote.id)
    clock.run("accept_quote", b.accept_quote, quote.id)
    order = clock.run("place_order", b.place_order, quote_id=quote.id)
    clock.run("confirm_order", b.confirm_order, order.id)
    clock.run("ship_order", b.ship_order, order.id)
    clock.run("invoice_order", b.invoice_order, order.id)
    clock.run(
        "receive_payment",
        b.receive_payment,
        customer_id=customer,
        amount=PRICE * Decimal("1.2"),
        method="bank",
    )
    clock.run(SINGLE, b.complete_activity, activity)


def measure(
    backend: str,
    *,
    cycles: int = 300,
    runs: int = 3,
    block: int = 5,
    batch: int = 1000,
    pg_url: str = DEFAULT_PG_URL,
) -> dict[str, Any]:
    """`runs` runs of `cycles` cycles; every `block` cycles, a block of as many raw one-row
    INSERTs as the cycles made commands, and every `block * 10` cycles, one transaction of
    `batch` raw rows."""
    with store(backend, pg_url=pg_url) as url:
        services = Services.open(Settings(database_url=url), initialise=True)
        business = services.business
        try:
            topic, state = sample_event(business)
            if backend == "sqlite":
                raw: RawSQLite | RawPostgres = RawSQLite(url, store_synchronous(business))
            else:
                raw = RawPostgres(url)
            customers, products = prepare(business, customers=50, products=20)
            raw.insert(raw.rows(200, topic, state))  # warm-up: file growth, statements
            per_run: list[dict[str, Any]] = []
            for _ in range(runs):
                activities = set_up(business, cycles)  # untimed: one open activity a cycle
                per_run.append(
                    _run(business, raw, topic, state, customers, products, activities, block, batch)
                )
            raw.close()
        finally:
            services.close()
    return _summary(backend, per_run, cycles, runs, batch, len(state))


def _run(
    business: Business,
    raw: RawSQLite | RawPostgres,
    topic: str,
    state: bytes,
    customers: list[Any],
    products: list[Any],
    activities: list[uuid.UUID],
    block: int,
    batch: int,
) -> dict[str, Any]:
    clock = Clock()
    raw_seconds = batched_seconds = 0.0
    raw_rows = batched_rows = 0
    per_block = block * (len(CYCLE) + 1)
    for i, activity in enumerate(activities):
        cycle(business, clock, customers[i % len(customers)], products[i % len(products)], activity)
        if (i + 1) % block == 0:
            rows = raw.rows(per_block, topic, state)
            began = time.perf_counter()
            raw.insert(rows)
            raw_seconds += time.perf_counter() - began
            raw_rows += per_block
        if (i + 1) % (block * 10) == 0 or (i + 1 == len(activities) and not batched_rows):
            rows = raw.rows(batch, topic, state)
            began = time.perf_counter()
            raw.insert_batch(rows)
            batched_seconds += time.perf_counter() - began
            batched_rows += batch
    raw_rate = raw_rows / raw_seconds if raw_seconds else float("nan")
    rates = {name: clock.count[name] / s for name, s in clock.seconds.items() if s}
    cycle_seconds = sum(clock.seconds[name] for name in CYCLE) / len(activities)
    return {
        "raw_per_s": raw_rate,
        "raw_batched_rows_per_s": batched_rows / batched_seconds,
        "rates": rates,
        "ratios": {name: rate / raw_rate for name, rate in rates.items()},
        "events": {name: statistics.median(v) for name, v in clock.events.items() if v},
        "cycles_per_s": 1 / cycle_seconds,
    }


def _summary(
    backend: str, runs: list[dict[str, Any]], cycles: int, n: int, batch: int, size: int
) -> dict[str, Any]:
    def med(get: Any) -> float:
        return statistics.median(get(r) for r in runs)

    commands = {}
    for name in [*CYCLE, SINGLE]:
        rate = med(lambda r, name=name: r["rates"][name])
        events = med(lambda r, name=name: r["events"].get(name, 0))
        commands[name] = {
            "per_s": round(rate, 1),
            "ms": round(1000 / rate, 3),
            "events": events,
            "events_per_s": round(rate * events, 1),
            "vs_raw": round(med(lambda r, name=name: r["ratios"][name]), 3),
        }
    cycle_events = sum(commands[name]["events"] for name in CYCLE)
    cycles_per_s = med(lambda r: r["cycles_per_s"])
    return {
        "backend": backend,
        "cycles_per_run": cycles,
        "runs": n,
        "event_state_bytes": size,
        "raw_per_s": round(med(lambda r: r["raw_per_s"]), 1),
        "raw_batch_rows": batch,
        "raw_batched_rows_per_s": round(med(lambda r: r["raw_batched_rows_per_s"]), 1),
        "commands": commands,
        "cycle": {
            "cycles_per_s": round(cycles_per_s, 2),
            "ms": round(1000 / cycles_per_s, 2),
            "commands_per_s": round(cycles_per_s * len(CYCLE), 1),
            "events": cycle_events,
            "events_per_s": round(cycles_per_s * cycle_events, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    print_machine()
    result = measure(args.backend, cycles=args.cycles, runs=args.runs, pg_url=args.pg_url)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
