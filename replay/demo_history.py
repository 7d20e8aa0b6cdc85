"""A year of a trading company's business, generated (replay/generator.py, the `business`
mix) and recorded through the Business's own commands: `tekil demo`, and the history behind
the named story of `tekil serve --demo`.

The year ends the day before `until` (today): each generated day's events are stamped within
that day's working hours, so that reports by date and `tekil audit as-of <day>` see the year
unfold, and the events recorded afterwards (a server's, the named demo story's) come after it.

Commands are decided one by one as always, but their events are written many commands to a
transaction (replay/batched.py): no other process may write to the store meanwhile. Run it
before a server starts (as `tekil serve --demo` does), never beside one; a write from
elsewhere is detected at the next batch, which then fails (`AnotherWriter`). It fills only a
store that holds no business yet (`has_history`), so that loading the demo again records
nothing, and a real company's books never receive made-up documents.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from api.services import Services
from domain import context
from domain.app import Business
from projections.runner import Progress, rebuild
from replay.batched import BatchedBusiness
from replay.generator import generate

DAYS = 365
WORKING_DAY = timedelta(hours=9)  # 08:30 to 17:30, where the business is
OPENING = time(8, 30)
# The history behind `tekil serve --demo`: small enough to start in a few seconds.
SERVE_DEMO_EVENTS = 3000
SERVE_DEMO_SEED = 2026
# What `tekil db init` records before any business: the MAIN warehouse.
_INIT_TOPICS = ("domain.inventory.warehouses:",)


class HasHistory(Exception):
    """The store already holds a business history: a generated one is not added to it."""


@dataclass(frozen=True)
class Recorded:
    events: int
    first_day: date
    last_day: date
    seconds: float
    read_models_seconds: float


def has_history(business: Business) -> bool:
    """Whether the store holds anything beyond what `tekil db init` records."""
    first = business.recorder.select_notifications(start=1, limit=len(_INIT_TOPICS) + 1)
    return any(not n.topic.startswith(_INIT_TOPICS) for n in first)


def record_history(
    services: Services,
    events: int,
    *,
    seed: int = 1,
    until: date | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_read_models: Callable[[Progress], None] | None = None,
    flush_every: int = 5000,
) -> Recorded:
    """Record about `events` events of generated business (a little more: the last commands
    finish) into a store that holds none yet, and bring the read models up to date."""
    if has_history(services.business):
        head = services.business.recorder.max_notification_id()
        raise HasHistory(f"the store already holds a business history ({head} events)")
    business = BatchedBusiness(env=services.settings.store_env())
    began = clock.monotonic()
    start = business.head
    last_day = (until or business.today()) - timedelta(days=1)
    first_day = last_day - timedelta(days=DAYS - 1)
    per_day = max(1.0, events / DAYS)
    days = [first_day]

    def new_day(day: date) -> None:
        days.append(day)
        business.set_today(day)
        opening = datetime.combine(day, OPENING, business.timezone)
        business.set_clock(opening, WORKING_DAY / per_day)

    shown = [0.0]

    def after(_result: Any) -> None:
        if business.pending >= flush_every:
            business.flush()
        if on_progress is not None and clock.monotonic() - shown[0] >= 0.5:
            shown[0] = clock.monotonic()
            done = business.head - start
            on_progress(Progress(done, events, done, shown[0] - began))

    try:
        new_day(first_day)
        with context.acting(context.CommandContext(actor="system:init")):
            business.ensure_defaults()  # the MAIN warehouse, on the first day if not yet there
        generate(
            business,
            start + events,
            seed=seed,
            mix="business",
            on_new_day=new_day,
            start_day=first_day,
            days=DAYS,
            # Stories in flight at once, and the catalogue, grow with the business.
            in_flight=max(2, round(per_day / 10)),
            products=min(120, max(20, events // 1000)),
            after_command=after,
        )
        business.flush()
        done = business.head - start
        if on_progress is not None:
            on_progress(Progress(done, done, done, clock.monotonic() - began))
        # The read models hold nothing of a new store yet: rebuilt at once, which is faster
        # than following the log batch by batch (some of them in a second process).
        generated = clock.monotonic()
        rebuild(
            business,
            services.reads,
            list(services.reads.projections.values()),
            on_progress=on_read_models,
            jobs=2 if done >= 50_000 else 1,  # a second process costs a second or two
            store_url=services.settings.database_url,
        )
    finally:
        business.close()
    ended = clock.monotonic()
    return Recorded(done, first_day, days[-1], ended - began, ended - generated)


def load_demo_history(services: Services) -> int:
    """The generated year behind `tekil serve --demo`'s named story: recorded into a store
    that holds no business yet, and never again (returns how many events it recorded)."""
    if has_history(services.business):
        with context.acting(context.CommandContext(actor="system:init")):
            services.business.ensure_defaults()
        return 0
    return record_history(services, SERVE_DEMO_EVENTS, seed=SERVE_DEMO_SEED).events
