"""The FastAPI application factory."""

from __future__ import annotations

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
) -> FastAPI:
    """The API over `services`. With `run_projections`, the read models are fed in this
    process (the default on SQLite); otherwise `tekil projections run` feeds them. With
    `run_jobs`, the scheduled business jobs run daily in this process (api/jobs.py). A request
    body over `max_body_bytes` (default: TEKIL_MAX_BODY_BYTES, or 1 MiB) is refused with 413."""

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
