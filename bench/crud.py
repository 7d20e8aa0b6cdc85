"""The reference for report latency: what a CRUD ERP does. Normalised document tables —
invoices and their lines, payment allocations, journal lines, stock moves, order lines,
shipment lines, opportunities — and each report a plain SQL aggregation over them at the
moment it is asked.

The tables are filled with `INSERT … SELECT` from tekil's read models of the same store, so
they hold the same facts; only the shape differs: documents and their lines, and no figure
kept up to date as events arrive (tekil's stock levels per item, invoices' open amounts and
profitability rows are such figures). Amounts and quantities keep the read models' types
(scaled integers), so that the comparison is of shape, not of column types; indexes are what a
CRUD schema would have on its foreign keys and dates.

Each query answers with one figure (`check`) that tekil's report gives too, so that the two
can be seen to agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
)

from domain.crm.opportunities import OPEN_STAGES as OPEN
from domain.ledger.chart import AccountKind, Chart
from projections.receivables import party_accounts
from projections.store import ReadStore

metadata = MetaData()
opportunities = Table(
    "crud_opportunities",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("owner", String(100), nullable=False, index=True),
    Column("stage", String(20), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("probability", BigInteger, nullable=False),
    Column("expected_close", Date),
)
journal_lines = Table(
    "crud_journal_lines",
    metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("entry_date", Date, nullable=False, index=True),
    Column("account", String(20), nullable=False, index=True),
    Column("party_id", Uuid, index=True),
    Column("source_id", Uuid),
    Column("document", String(40)),
    Column("debit", BigInteger, nullable=False),
    Column("credit", BigInteger, nullable=False),
)
stock_moves = Table(
    "crud_stock_moves",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("product_id", Uuid, nullable=False, index=True),
    Column("warehouse", String(20), nullable=False),
    Column("document_id", Uuid, nullable=False),
    Column("quantity", BigInteger, nullable=False),  # signed: receipts add, issues take away
    Column("value", BigInteger, nullable=False),
)
products = Table(
    "crud_products",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("sku", String(40), nullable=False),
    Column("name", String(200), nullable=False),
)
orders = Table(
    "crud_orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("warehouse", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
)
order_lines = Table(
    "crud_order_lines",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("product_id", Uuid, nullable=False, index=True),
    Column("quantity", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
)
invoices = Table(
    "crud_invoices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("order_id", Uuid, index=True),
    Column("invoice_date", Date, nullable=False, index=True),
    Column("due_date", Date, nullable=False, index=True),
    Column("total", BigInteger, nullable=False),
)
invoice_lines = Table(
    "crud_invoice_lines",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("product_id", Uuid, nullable=False, index=True),
    Column("quantity", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
)
allocations = Table(
    "crud_payment_allocations",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("settled_on", Date, nullable=False),
    Column("amount", BigInteger, nullable=False),
)
shipment_lines = Table(
    "crud_shipment_lines",
    metadata,
    Column("shipment_id", Uuid, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("order_id", Uuid, index=True),
    Column("product_id", Uuid, nullable=False, index=True),
    Column("ship_date", Date, nullable=False, index=True),
    Column("quantity", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
)
Index("crud_journal_lines_party_account", journal_lines.c.party_id, journal_lines.c.account)


def fill(engine: Engine, reads: ReadStore) -> dict[str, int]:
    """Create the CRUD tables and copy the read models' facts into them; rows per table."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    # Each CRUD table, the read-model table it is copied from, and the source's name for
    # each column whose name differs.
    copies: list[tuple[Table, Table, dict[str, str]]] = [
        (opportunities, reads["opportunities"]["opportunities"], {}),
        (journal_lines, reads["ledger"]["lines"], {}),
        (stock_moves, reads["stock"]["movements"], {"id": "position"}),
        (products, reads["products"]["products"], {}),
        (orders, reads["orders"]["orders"], {}),
        (order_lines, reads["orders"]["order_lines"], {}),
        (invoices, reads["invoices"]["invoices"], {}),
        (invoice_lines, reads["invoices"]["invoice_lines"], {}),
        (allocations, reads["invoices"]["settlements"], {}),
        (
            shipment_lines,
            reads["profitability"]["costs"],
            {"ship_date": "on_date", "cost": "amount"},
        ),
    ]
    counts = {}
    with engine.begin() as conn:
        for target, source, renamed in copies:
            # Copied inside the database: the values as stored, no conversion.
            names = list(target.c.keys())
            columns = [source.c[renamed.get(name, name)] for name in names]
            conn.execute(insert(target).from_select(names, select(*columns)))
            counts[target.name] = conn.execute(
                select(func.count()).select_from(target)
            ).scalar_one()
    return counts


def cents(raw: Any) -> Decimal:
    return Decimal(int(raw or 0)) / 100


# -- the reports, as plain aggregations -------------------------------------------------------

OPEN_STAGES = [s.value for s in OPEN]


def pipeline(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    o = opportunities
    weighted = func.sum(o.c.amount * o.c.probability / 1_000_000)
    month = func.substr(func.cast(o.c.expected_close, String), 1, 7)
    out = Decimal(0)
    for keys in ((o.c.stage,), (o.c.owner,), (month,)):
        query = (
            select(*keys, o.c.currency, func.count(), func.sum(o.c.amount), weighted)
            .where(o.c.stage.in_(OPEN_STAGES))
            .group_by(*keys, o.c.currency)
        )
        rows = conn.execute(query).all()
        if keys[0] is o.c.stage:
            out = sum((cents(r[3]) for r in rows), Decimal(0))
    closed = select(o.c.stage, o.c.currency, func.count(), func.sum(o.c.amount)).where(
        o.c.stage.in_(("won", "lost"))
    )
    conn.execute(closed.group_by(o.c.stage, o.c.currency)).all()
    return out


def stock(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    m, p = stock_moves, products
    on_hand = (
        select(m.c.product_id, m.c.warehouse, func.sum(m.c.quantity), func.sum(m.c.value))
        .group_by(m.c.product_id, m.c.warehouse)
        .subquery()
    )
    reserved = (
        select(orders.c.warehouse, order_lines.c.product_id, func.sum(order_lines.c.reserved))
        .join(orders, orders.c.id == order_lines.c.order_id)
        .where(orders.c.status == "confirmed")
        .group_by(orders.c.warehouse, order_lines.c.product_id)
    )
    held = {(r[1], r[0]): r[2] for r in conn.execute(reserved).all()}
    rows = conn.execute(
        select(p.c.sku, p.c.name, on_hand).join(p, p.c.id == on_hand.c.product_id).order_by(p.c.sku)
    ).all()
    total = Decimal(0)
    for row in rows:
        _available = (row[4] or 0) - held.get((row[2], row[3]), 0)
        total += cents(row[5])
    return total


def cash_flow(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    today: date = ctx["today"]
    start, end = today - timedelta(days=30), today + timedelta(days=30)
    j = journal_lines
    accounts = [chart.role("cash"), chart.role("bank")]
    opening = conn.execute(
        select(func.sum(j.c.debit - j.c.credit)).where(
            j.c.account.in_(accounts), j.c.entry_date < start
        )
    ).scalar()
    balance = cents(opening)
    months: dict[tuple[int, int], Decimal] = {}
    moved = select(j.c.entry_date, j.c.debit, j.c.credit).where(
        j.c.account.in_(accounts), j.c.entry_date >= start, j.c.entry_date <= end
    )
    for day, debit, credit in conn.execute(moved).all():
        key = (day.year, day.month)
        months[key] = months.get(key, Decimal(0)) + cents(debit) - cents(credit)
    paid = (
        select(allocations.c.invoice_id, func.sum(allocations.c.amount).label("paid"))
        .group_by(allocations.c.invoice_id)
        .subquery()
    )
    left = invoices.c.total - func.coalesce(paid.c.paid, 0)
    due = select(invoices.c.due_date, left).outerjoin(paid, paid.c.invoice_id == invoices.c.id)
    expected = Decimal(0)
    for due_date, amount in conn.execute(due.where(left > 0)).all():
        if start <= due_date <= end:
            expected += cents(amount)
    return balance + sum(months.values(), Decimal(0))


def profitability(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    revenue = select(
        invoice_lines.c.product_id,
        func.sum(invoice_lines.c.net),
        func.sum(invoice_lines.c.quantity),
    ).group_by(invoice_lines.c.product_id)
    cost = select(
        shipment_lines.c.product_id,
        func.sum(shipment_lines.c.cost),
        func.sum(shipment_lines.c.quantity),
    ).group_by(shipment_lines.c.product_id)
    names = dict(conn.execute(select(products.c.id, products.c.sku)).all())
    sold = {k: cents(v) for k, v, _ in conn.execute(revenue).all()}
    spent = {k: cents(v) for k, v, _ in conn.execute(cost).all()}
    rows = sorted(sold.keys() | spent.keys(), key=lambda k: names.get(k, ""))
    return sum((sold.get(k, Decimal(0)) for k in rows), Decimal(0))


def _account_totals(conn: Connection, accounts: list[str] | None = None) -> dict[str, Any]:
    j = journal_lines
    query = select(j.c.account, func.sum(j.c.debit), func.sum(j.c.credit)).group_by(j.c.account)
    if accounts is not None:
        query = query.where(j.c.account.in_(accounts))
    return {a: (cents(d), cents(c)) for a, d, c in conn.execute(query).all()}


def trial_balance(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    return sum((d for d, _ in _account_totals(conn).values()), Decimal(0))


def income_statement(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    kinds = (AccountKind.INCOME, AccountKind.EXPENSE)
    codes = [code for code, a in chart.accounts.items() if a.kind in kinds]
    totals = _account_totals(conn, codes)
    return sum((c - d for d, c in totals.values()), Decimal(0))  # the net result


def customer_statement(conn: Connection, chart: Chart, ctx: dict[str, Any]) -> Decimal:
    customer: UUID = ctx["customer_id"]
    j = journal_lines
    query = (
        select(j.c.entry_date, j.c.document, j.c.debit, j.c.credit, invoices.c.due_date)
        .outerjoin(invoices, invoices.c.id == j.c.source_id)
        .where(j.c.party_id == customer, j.c.account.in_(party_accounts(chart)))
        .order_by(j.c.entry_date, j.c.entry_id, j.c.line)
    )
    balance = Decimal(0)
    for row in conn.execute(query).all():
        balance += cents(row.debit) - cents(row.credit)
    return balance


REPORTS: dict[str, Callable[[Connection, Chart, dict[str, Any]], Decimal]] = {
    "pipeline": pipeline,
    "stock": stock,
    "cash flow": cash_flow,
    "profitability": profitability,
    "trial balance": trial_balance,
    "income statement": income_statement,
    "customer statement": customer_statement,
}
