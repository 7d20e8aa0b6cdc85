"""Every read model tekil keeps. A new one is added here and nowhere else."""

from __future__ import annotations

from projections.activities import Activities
from projections.audit import Audit
from projections.customers import Customers
from projections.engine import Projection
from projections.invoices import Invoices
from projections.leads import Leads
from projections.ledger import Ledger
from projections.opportunities import Opportunities
from projections.orders import Orders
from projections.payments import Payments
from projections.products import Products
from projections.profitability import Profitability
from projections.quotes import Quotes
from projections.shipments import Shipments
from projections.stock import Stock


def all_projections() -> list[Projection]:
    return [
        Leads(),
        Customers(),
        Opportunities(),
        Activities(),
        Ledger(),
        Invoices(),
        Payments(),
        Profitability(),
        Products(),
        Stock(),
        Quotes(),
        Orders(),
        Shipments(),
        Audit(),
    ]
