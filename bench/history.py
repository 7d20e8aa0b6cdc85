"""Histories to measure against, and the cost of a write on top of one.

A history is a store of N events of a whole business (replay/generator.py's `business` mix,
as bench/audit_scale.py generates it: its read models fed as it grows), generated once and
kept in the benchmark cache under the same name audit_scale gives it, so that the two share
the million-event store. Benchmarks work on a copy: a SQLite file, or the same events in a
PostgreSQL schema of its own (read-model tables empty until a rebuild fills them).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import select

from api.services import Services
from bench.audit_scale import generate_store, signature
from bench.harness import DEFAULT_PG_URL, copy_sqlite, store
from domain import context
from domain.app import Business, open_business
from domain.billing.receivables import receivable_id
from domain.settings import Settings
from projections.registry import all_projections
from projections.store import ReadStore

CACHE_DIR = Path(os.environ.get("TEKIL_BENCH_CACHE", "/tmp/tekil-bench-cache"))
# Generation speed seen so far (events/s, batched writes, read models fed as it grows), for
# the warning before a long generation.
GENERATION_RATE = (300, 1100)
# What bench/audit_scale.py generates: a million events make a year of 3000 a day, with 300
# stories in flight over a catalogue of 120 products.
AUDIT_SCALE_SHAPE = {"events_per_day": 3000, "in_flight": 300, "products": 120}


def shape(events: int) -> dict[str, int]:
    """Every history is a year of business (so that quotes are accepted, invoices fall due
    and are paid or go overdue): a company with fewer events a day, and fewer stories in
    flight at once, for a smaller history; a short catalogue below 10k events (tests)."""
    per_day = max(2, events * 3 // 1000)
    return {
        "events_per_day": per_day,
        "in_flight": max(8, per_day // 10),
        "products": 120 if events >= 10_000 else 15,
    }


def cached_store(
    events: int, seed: int = 1, cache_dir: Path = CACHE_DIR, flush_every: int = 2000
) -> tuple[Path, dict[str, Any]]:
    """The cached SQLite store of `events` events (generated now if there is none) and what
    was remembered about it."""
    made = shape(events)
    name = f"business-{events}-s{seed}-{signature()}"
    if made != AUDIT_SCALE_SHAPE:  # else the very store audit_scale generates and uses
        name += "-d{events_per_day}-f{in_flight}-p{products}".format(**made)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path, meta = cache_dir / f"{name}.db", cache_dir / f"{name}.json"
    if not (path.exists() and meta.exists()):
        slow, fast = (events / rate / 60 for rate in GENERATION_RATE)
        print(
            f"  generating a history of {events:,} events into {path} "
            f"(once; about {fast:.0f}-{slow:.0f} min) ...",
            file=sys.stderr,
            flush=True,
        )
        for stale in cache_dir.glob(f"{name}.db*"):
            stale.unlink()
        with context.acting(context.CommandContext(actor="bench")):
            info = generate_store(path, events, seed, flush_every, **made)
        meta.write_text(json.dumps(info, indent=1))
    return path, json.loads(meta.read_text())


@contextmanager
def working_copy(
    path: Path, backend: str, *, pg_url: str = DEFAULT_PG_URL, directory: str | None = None
) -> Iterator[str]:
    """A store to change: a copy of the cached SQLite file, or its events in a new
    PostgreSQL schema (tables of the read models, keys and chain created, read models
    empty). Removed afterwards."""
    with store(backend, pg_url=pg_url, directory=directory) as url:
        if backend == "sqlite":
            copy_sqlite(path, Path(url.split(":///", 1)[1]))
        else:
            transfer(f"sqlite:///{path}", url)
        yield url


def transfer(source_url: str, target_url: str, page: int = 10_000) -> int:
    """Copy every stored event, byte for byte and in order, into an empty store — and the
    snapshots, as a server that recorded the history would have them (without, the first
    invoice replays the year's invoice series from its first number)."""
    source = open_business(Settings(database_url=source_url))
    target = open_business(Settings(database_url=target_url), create_tables=True)
    reads = ReadStore(target_url, all_projections())
    reads.create_tables()
    reads.dispose()
    Services.open(Settings(database_url=target_url)).close()  # keys and chain tables
    copied, start = 0, 1
    try:
        while batch := source.recorder.select_notifications(start=start, limit=page):
            target.recorder.insert_events(batch)
            copied += len(batch)
            start = batch[-1].id + 1
        snapshots = source.snapshots.recorder if source.snapshots else None
        if snapshots is not None and target.snapshots is not None:
            with snapshots.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT originator_id, originator_version, topic, state FROM "
                    f"{snapshots.events_table_name} ORDER BY originator_id, originator_version"
                )
                rows = cursor.fetchall()
            target.snapshots.recorder.insert_events(
                [StoredEvent(UUID(r[0]), r[1], r[2], r[3]) for r in rows]
            )
    finally:
        source.close()
        target.close()
    return copied


# -- the cost of a write against history ------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


# The customers a run's invoices go to, at every size of history: the same working set, so
# that what differs between sizes is the history, not how many customers there are to draw
# from (a 10k history has about 70 customers, a million about 8,000).
CUSTOMERS = 50

# Invoices timed on one history before the next history's turn (bench `invoice_ladder`).
BLOCK = 25


@dataclass
class _Invoicing:
    """One history being invoiced: its services, and its shipped orders with their customers'
    receivables accounts."""

    services: Services
    head: int
    customers: int
    orders: list[tuple[UUID, UUID]]
    timed: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)

    @classmethod
    def prepare(cls, url: str, count: int, seed: int) -> _Invoicing:
        """Orders of `CUSTOMERS` customers and of products of the history at `url`, placed,
        confirmed and shipped (untimed), ready to be invoiced."""
        services = Services.open(Settings(database_url=url))
        try:
            business = services.business
            head = business.recorder.max_notification_id() or 0
            customers, products = _buyers_and_goods(services, count)
            rng = random.Random(seed)
            customers = rng.sample(customers, min(CUSTOMERS, len(customers)))
            orders = []
            with context.acting(context.CommandContext(actor="bench")):
                for _ in range(count):
                    customer = rng.choice(customers)
                    order = _shipped_order(business, customer, rng.choice(products))
                    orders.append((order, receivable_id(customer)))
        except BaseException:
            services.close()
            raise
        return cls(services, head, len(customers), orders)

    def invoice(self, i: int, into: list[float]) -> None:
        """Issue the invoice of order `i`, its customer's receivables loaded from the store
        (as for a customer not invoiced lately), and add its time in ms to `into`."""
        business = self.services.business
        order, receivables = self.orders[i]
        cache = business.repository.cache
        if cache is not None:
            with suppress(KeyError):
                cache.get(receivables, evict=True)
        with context.acting(context.CommandContext(actor="bench")):
            began = time.perf_counter()
            business.invoice_order(order)
            into.append((time.perf_counter() - began) * 1000)

    def figures(self) -> dict[str, Any]:
        timed = self.timed
        return {
            "history_events": self.head,
            "invoices": len(timed),
            "customers": self.customers,
            "p50_ms": round(statistics.median(timed), 3),
            "p95_ms": round(percentile(timed, 95), 3),
            "p99_ms": round(percentile(timed, 99), 3),
            "cold_ms": [round(t, 1) for t in self.cold],
        }


def invoice_ladder(
    urls: dict[str, str], count: int, *, warm_up: int = 5, block: int = BLOCK, seed: int = 1
) -> dict[str, dict[str, Any]]:
    """Issue `count` invoices through the Application on top of each history of `urls` (name:
    URL), the histories taking turns a `block` of invoices at a time (each round in another
    order), so that every size sees the same machine — its load, its disk's write-back — and
    a percentile compares like with like. Each invoice is timed alone and loads its
    customer's receivables from the store (`_Invoicing.invoice`): the part of the command that
    reads history. The first `warm_up` of each history load what a running server already
    holds (the year's number series, ...): timed apart as `cold`. No projection runner runs
    meanwhile."""
    runs = {}
    try:
        for name, url in urls.items():
            runs[name] = _Invoicing.prepare(url, count + warm_up, seed)
        # What the preparation wrote (a copy of the history: 1.7 GB at 1M; a rebuild's
        # tables) goes to disk now, not while the invoices wait for their own fsync.
        os.sync()
        for run in runs.values():
            for i in range(warm_up):
                run.invoice(i, run.cold)
        order = list(runs.values())
        for round_, first in enumerate(range(warm_up, count + warm_up, block)):
            turn = order[round_ % len(order) :] + order[: round_ % len(order)]
            for run in turn:
                for i in range(first, min(first + block, count + warm_up)):
                    run.invoice(i, run.timed)
        return {name: run.figures() for name, run in runs.items()}
    finally:
        for run in runs.values():
            run.services.close()


def _buyers_and_goods(services: Services, needed: int) -> tuple[list[Any], list[Any]]:
    """Customers of the history, and up to 20 of its stocked products, with `needed` more
    of each received at MAIN first (untimed), so that no order waits for stock."""
    parties = services.reads["customers"]["parties"]
    items = services.reads["stock"]["items"]
    catalogue = services.reads["products"]["products"]
    with services.reads.reader.connect() as conn:
        customers = [
            c for (c,) in conn.execute(select(parties.c.id).where(parties.c.is_customer == 1))
        ]
        goods = conn.execute(
            select(items.c.product_id, catalogue.c.standard_cost)
            .join(catalogue, catalogue.c.id == items.c.product_id)
            .where(items.c.warehouse == "MAIN")
            .order_by(items.c.sku)
            .limit(20)
        ).all()
    if not customers or not goods:
        raise RuntimeError("the history has no customers or no stocked products")
    lines = [
        {"product_id": p, "quantity": Decimal(needed), "unit_cost": cost or Decimal(1)}
        for p, cost in goods
    ]
    with context.acting(context.CommandContext(actor="bench")):
        services.business.receive_stock(lines=lines)
    return customers, [p for p, _ in goods]


def _shipped_order(business: Business, customer_id: Any, product_id: Any) -> Any:
    order = business.place_order(
        customer_id=customer_id, lines=[{"product_id": product_id, "quantity": Decimal(1)}]
    )
    business.confirm_order(order.id)
    business.ship_order(order.id)
    return order.id
