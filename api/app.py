"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.jobs import Scheduler
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
    services: Services, *, run_projections: bool = True, run_jobs: bool = False
) -> FastAPI:
    """The API over `services`. With `run_projections`, the read models are fed in this
    process (the default on SQLite); otherwise `tekil projections run` feeds them. With
    `run_jobs`, the scheduled business jobs run daily in this process (api/jobs.py)."""

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
    for module in (health, leads, customers, opportunities, activities, reports):
        app.include_router(module.router)
    for module in (products, warehouses, stock, quotes, orders, shipments):
        app.include_router(module.router)
    for module in (invoices, payments, journal, finance, audit):
        app.include_router(module.router)
    return app
