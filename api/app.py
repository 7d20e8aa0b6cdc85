"""The FastAPI application factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.jobs import Scheduler
from api.limits import BodySizeLimit, NoNulInUrl, max_body_bytes_from_env
from api.routers import (
    activities,
    audit,
    customers,
    finance,
    health,
    invoices,
    journal,
    leads,
    opportunities,
    orders,
    payments,
    products,
    quotes,
    reports,
    shipments,
    stock,
    warehouses,
)
from api.services import Services


def create_app(
    services: Services,
    *,
    run_projections: bool = True,
    run_jobs: bool = False,
    max_body_bytes: int | None = None,
    close_services: bool = False,
) -> FastAPI:
    """The API over `services`. With `run_projections`, the read models are fed in this
    process (the default on SQLite); otherwise `tekil projections run` feeds them. With
    `run_jobs`, the scheduled business jobs run daily in this process (api/jobs.py). A request
    body over `max_body_bytes` (default: TEKIL_MAX_BODY_BYTES, or 1 MiB) is refused with 413.
    With `close_services`, the app closes `services` when it shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_projections:
            services.runner.start()
        scheduler = Scheduler(services) if run_jobs else None
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            services.runner.stop()
            if close_services:
                services.close()

    app = FastAPI(
        title="tekil",
        summary="One event-sourced store for the whole business: CRM and ERP.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    limit = max_body_bytes_from_env() if max_body_bytes is None else max_body_bytes
    app.add_middleware(BodySizeLimit, max_bytes=limit)
    app.add_middleware(NoNulInUrl)
    app.include_router(health.router)
    for module in (leads, customers, opportunities, activities, reports):
        app.include_router(module.router, responses=errors.PROBLEM_RESPONSES)
    for module in (products, warehouses, stock, quotes, orders, shipments):
        app.include_router(module.router, responses=errors.PROBLEM_RESPONSES)
    for module in (invoices, payments, journal, finance, audit):
        app.include_router(module.router, responses=errors.PROBLEM_RESPONSES)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process of `tekil serve --workers N` (uvicorn imports it by
    name in each worker): the store from TEKIL_DATABASE_URL; the read models fed here only if
    TEKIL_SERVE_PROJECTIONS is 1 (`serve` runs them in a process of their own instead), the
    scheduled jobs run here if TEKIL_SERVE_JOBS is 1."""
    services = Services.open()
    return create_app(
        services,
        run_projections=os.environ.get("TEKIL_SERVE_PROJECTIONS") == "1",
        run_jobs=os.environ.get("TEKIL_SERVE_JOBS") == "1",
        close_services=True,
    )
