"""Scheduled business jobs: ordinary commands issued as `system:scheduler`.

A job reads a read model for what is due, then runs one command per document under an
idempotency key derived from the job, the day it covers and the document. Running a job
twice (a restart, two API processes, a manual `tekil jobs run`) therefore records once; and
the command itself re-checks the aggregate, so a stale read model cannot make it wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from api.services import Services
from domain import context
from domain.core import Result
from domain.errors import DomainError

log = logging.getLogger(__name__)

ACTOR = "system:scheduler"
# How long a job waits for the read model it reads to reach the head of the log (at start-up
# the runner may still be catching up); after that it goes on with what the model has.
CATCH_UP_SECONDS = 30.0


@dataclass
class JobRun:
    job: str
    day: date
    candidates: int = 0
    recorded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.job} for {self.day}: {self.candidates} due, {len(self.recorded)} recorded"
            + (f", {len(self.failed)} failed" if self.failed else "")
        )


def command_key(job: str, day: date, document_id: UUID) -> str:
    return f"{job}:{day.isoformat()}:{document_id}"


def _fresh(services: Services, read_model: str, timeout: float) -> None:
    head = services.business.recorder.max_notification_id() or 0
    if head and not services.reads.wait_for(head, [read_model], timeout=timeout):
        log.warning("read model %s is behind the store; the job uses what it has", read_model)


def _each(
    services: Services,
    job: str,
    day: date,
    ids: Iterable[UUID],
    command: Callable[[UUID, date], Result],
) -> JobRun:
    run = JobRun(job, day)
    for document_id in ids:
        run.candidates += 1
        key = command_key(job, day, document_id)
        ctx = context.CommandContext(
            actor=ACTOR, command_id=key, idempotency_key=key, fingerprint=key
        )
        try:
            with context.acting(ctx):
                result = command(document_id, day)
        except DomainError as error:  # one document's trouble does not stop the others
            log.warning("%s: %s failed: %s", job, document_id, error.detail)
            run.failed[str(document_id)] = error.detail
            continue
        if result.position is not None and not result.replayed:
            run.recorded.append(str(document_id))
    if run.recorded:
        services.runner.wake()
    log.info("%s", run.summary())
    return run


def expire_quotes(
    services: Services, today: date, *, catch_up_timeout: float = CATCH_UP_SECONDS
) -> JobRun:
    """Expire draft and sent quotes whose validity ended before `today`."""
    _fresh(services, "quotes", catch_up_timeout)
    quotes = services.reads["quotes"]["quotes"]
    with services.reads.reader.connect() as conn:
        ids = (
            conn.execute(
                select(quotes.c.id)
                .where(quotes.c.status.in_(["draft", "sent"]), quotes.c.valid_until < today)
                .order_by(quotes.c.valid_until, quotes.c.id)
            )
            .scalars()
            .all()
        )
    return _each(services, "expire-quotes", today, ids, services.business.expire_quote)


def mark_overdue_invoices(
    services: Services, today: date, *, catch_up_timeout: float = CATCH_UP_SECONDS
) -> JobRun:
    """Mark open invoices whose due date has passed overdue."""
    _fresh(services, "invoices", catch_up_timeout)
    invoices = services.reads["invoices"]["invoices"]
    with services.reads.reader.connect() as conn:
        ids = (
            conn.execute(
                select(invoices.c.id)
                .where(
                    invoices.c.status == "open",
                    invoices.c.overdue.is_(False),
                    invoices.c.due_date < today,
                )
                .order_by(invoices.c.due_date, invoices.c.number)
            )
            .scalars()
            .all()
        )
    return _each(services, "mark-overdue", today, ids, services.business.mark_invoice_overdue)


JOBS: dict[str, Callable[..., JobRun]] = {
    "expire-quotes": expire_quotes,
    "mark-overdue": mark_overdue_invoices,
}


def run_job(services: Services, name: str, today: date | None = None) -> JobRun:
    """Run one job now for `today` (default: the business date where the business is)."""
    job = JOBS[name]
    return job(services, today or services.business.today())


class Scheduler:
    """Runs every job daily shortly after midnight in the business's time zone, and once at
    start-up (so a process that was down at midnight catches up)."""

    def __init__(self, services: Services, *, hour: int = 0, minute: int = 5) -> None:
        self.services = services
        self.timezone = services.business.timezone
        self.trigger = CronTrigger(hour=hour, minute=minute, timezone=self.timezone)
        self.scheduler = BackgroundScheduler(timezone=self.timezone)

    def start(self, *, run_now: bool = True) -> None:
        for name in JOBS:
            options: dict[str, Any] = {}
            if run_now:
                options["next_run_time"] = datetime.now(self.timezone)
            self.scheduler.add_job(
                self._run,
                self.trigger,
                args=[name],
                id=name,
                name=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=6 * 3600,
                replace_existing=True,
                **options,
            )
        self.scheduler.start()

    def _run(self, name: str) -> None:
        try:
            run_job(self.services, name)
        except Exception:  # keep the scheduler alive; the next run tries again
            log.exception("scheduled job %s failed", name)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
