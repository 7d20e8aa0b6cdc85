"""Reconciliation: the operational read models and the ledger, computed from the same events
by different code, must agree. Each check names both figures and the difference; a broken
or stale read model shows up here (see docs/decisions/0004-financial-reports.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, func, select

from domain.ledger.chart import Chart
from domain.values import ZERO
from projections.engine import Projection, tracking_table
from projections.financial import Totals, account_totals, fmt

# The read models reconciliation reads; `stock` belongs to inventory (table `items`).
READ_MODELS = ("ledger", "invoices", "payments", "profitability", "stock")


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    read_model: str
    read_model_amount: Decimal | None
    ledger: str
    ledger_amount: Decimal

    @property
    def available(self) -> bool:
        return self.read_model_amount is not None

    @property
    def difference(self) -> Decimal | None:
        if self.read_model_amount is None:
            return None
        return self.read_model_amount - self.ledger_amount

    @property
    def ok(self) -> bool:
        return self.difference == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "read_model": self.read_model,
            "read_model_amount": _s(self.read_model_amount),
            "ledger": self.ledger,
            "ledger_amount": fmt(self.ledger_amount),
            "difference": _s(self.difference),
            "ok": self.ok,
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _sum(conn: Connection, table: Table, column: str, *where: Any) -> Decimal:
    value = conn.execute(select(func.sum(table.c[column])).where(*where)).scalar()
    return Decimal(value) if value is not None else ZERO


def checks(conn: Connection, models: Mapping[str, Projection], chart: Chart) -> list[Check]:
    lines = models["ledger"]["lines"]
    totals = account_totals(conn, lines)

    def debit_balance(*roles: str) -> Decimal:
        return sum((totals.get(chart.role(r), Totals()).balance for r in roles), ZERO)

    def account(*roles: str) -> str:
        return "account " + " + ".join(chart.role(r) for r in roles)

    invoices = models["invoices"]["invoices"]
    credits = models["payments"]["credits"]
    payments = models["payments"]["payments"]
    revenue, cost = models["profitability"].totals(conn)  # type: ignore[attr-defined]
    stock = models.get("stock")
    cash = [chart.role("cash"), chart.role("bank")]
    from_payments = account_totals(conn, lines, accounts=cash, source_kind="payment")
    everything = Totals()
    for t in totals.values():
        everything += t

    return [
        Check(
            "sales",
            "invoiced revenue net of VAT equals the sales account",
            "invoices: sum of untaxed",
            _sum(conn, invoices, "untaxed"),
            account("sales") + " (credit balance)",
            -debit_balance("sales"),
        ),
        Check(
            "stock",
            "stock value equals the inventory account",
            "stock: sum of items.value" if stock is not None else "stock: read model not installed",
            _sum(conn, stock["items"], "value") if stock is not None else None,
            account("inventory"),
            debit_balance("inventory"),
        ),
        Check(
            "receivables",
            "open invoices less unallocated credit equal the receivables account",
            "invoices: sum of open_amount - payments: unallocated credit",
            _sum(conn, invoices, "open_amount") - _sum(conn, credits, "unallocated"),
            account("receivables"),
            debit_balance("receivables"),
        ),
        Check(
            "cash",
            "customer payments received equal what payments posted to cash and bank "
            "(other entries on these accounts are not customer payments)",
            "payments: sum of amount",
            _sum(conn, payments, "amount"),
            account("cash", "bank") + " from payments",
            sum((t.balance for t in from_payments.values()), ZERO),
        ),
        Check(
            "profitability_revenue",
            "revenue in the profitability report equals the sales account",
            "profitability: sum of revenue",
            revenue,
            account("sales") + " (credit balance)",
            -debit_balance("sales"),
        ),
        Check(
            "profitability_cost",
            "cost of goods sold in the profitability report equals its account",
            "profitability: sum of costs",
            cost,
            account("cost_of_goods_sold"),
            debit_balance("cost_of_goods_sold"),
        ),
        Check(
            "trial_balance",
            "the ledger balances: all debits equal all credits",
            "ledger: sum of debits",
            everything.debit,
            "ledger: sum of credits",
            everything.credit,
        ),
    ]


def positions(conn: Connection, models: Mapping[str, Projection]) -> dict[str, int]:
    """How far each read model has processed the log, read in the same snapshot as the
    figures."""
    rows = conn.execute(
        select(tracking_table.c.name, tracking_table.c.version, tracking_table.c.position)
    ).all()
    found = {(name, version): position for name, version, position in rows}
    return {name: found.get(m.key, 0) for name, m in models.items()}


def reconcile(
    conn: Connection,
    models: Mapping[str, Projection],
    chart: Chart,
    positions: Mapping[str, int],
) -> dict[str, Any]:
    """Every check, and `ok` when all that could run agree. A check whose read model is not
    installed is reported as not run and fails `ok`: silence is not agreement."""
    found = checks(conn, models, chart)
    return {
        "ok": all(c.ok for c in found),
        "checks": [c.as_dict() for c in found],
        "positions": dict(positions),
        # The runner moves every read model together; apart, they saw different events.
        "positions_agree": len(set(positions.values())) <= 1,
    }
