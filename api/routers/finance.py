"""Finance reports, each a query over read models fed by the same events: cash flow,
profitability, receivables aging, the financial statements, the general ledger, the
customer statement, and the reconciliation that proves they agree with the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from api.deps import ExplainDep, Reader, ServicesDep, read_model, require
from api.schemas import MAX_OFFSET
from api.services import Services
from domain.errors import NotFound
from projections import financial, receivables
from projections.explain import Explanation
from projections.profitability import Sort
from projections.receivables import AgingSort
from projections.reconciliation import READ_MODELS, positions, reconcile
from projections.registry import all_projections

router = APIRouter(tags=["finance"])

READERS = ("finance", "manager", "auditor")
From = Annotated[date | None, Query(alias="from", description="first day of the period")]
To = Annotated[date | None, Query(alias="to", description="last day of the period")]
# A report's page of rows: how many, from which (its totals are of all of them).
Limit = Annotated[int, Query(ge=1, le=10_000, description="how many rows, at most")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="how many rows to skip")]

# Reconciliation reads every read model it compares that this installation has (the stock
# model belongs to inventory); a missing one is reported as a failed check.
RECONCILED = tuple(n for n in READ_MODELS if n in {p.name for p in all_projections()})


def invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )


def resolve_period(
    r: Reader, date_from: date | None, date_to: date | None
) -> tuple[date | None, date | None]:
    """`from` and/or `to`. `as_of` a day (a business date) ends the period on that day; as of a
    position or an instant, the books are replayed as they stood then, every date included,
    exactly as the report read at that moment."""
    if r.moment is not None and r.moment.position is None:
        date_to = r.moment.day if date_to is None else min(date_to, r.moment.day)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise invalid("from", "must not be after to (or the as_of day)")
    return date_from, date_to


def customer_names(r: Reader) -> dict[UUID, str]:
    parties = r["customers"]["parties"]
    return {row.id: row.name for row in r.conn.execute(select(parties.c.id, parties.c.name))}


def customer_name(r: Reader, customer_id: UUID) -> str:
    """The customer's name; as of a position read from the live table (`r.up_to`), only if
    it was registered by then."""
    parties = r["customers"]["parties"]
    query = select(parties.c.name).where(parties.c.id == customer_id)
    if r.up_to is not None:
        query = query.where(parties.c.registered <= r.up_to)
    name = r.conn.execute(query).scalar()
    if name is None:
        raise NotFound("customer", customer_id)
    return str(name)


def _statement(
    report: Callable[..., dict[str, Any]],
    services: Services,
    r: Reader,
    explain: Explanation | None,
    date_from: date | None,
    date_to: date | None,
) -> dict[str, Any]:
    """One of the financial statements over the period asked (`resolve_period`), of the
    ledger's lines posted up to the `as_of` position where the live ledger is read."""
    start, end = resolve_period(r, date_from, date_to)
    lines, chart = r["ledger"]["lines"], services.business.chart
    return report(r.conn, lines, chart, start, end, explain=explain, up_to=r.up_to)


@router.get("/api/reports/trial-balance", dependencies=[require(*READERS)])
def trial_balance(
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", dated=True, positioned=True)],
    explain: ExplainDep,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """The trial balance (mizan): per account the balance before the period, its debits and
    credits, and the closing debit or credit balance; `balanced` when the totals agree."""
    return _statement(financial.trial_balance, services, r, explain, date_from, date_to)


@router.get("/api/reports/income-statement", dependencies=[require(*READERS)])
def income_statement(
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", dated=True, positioned=True)],
    explain: ExplainDep,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """Income and expenses of the period (from the beginning with `as_of`), and the net
    profit."""
    return _statement(financial.income_statement, services, r, explain, date_from, date_to)


@router.get("/api/reports/balance-sheet", dependencies=[require(*READERS)])
def balance_sheet(
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", dated=True, positioned=True)],
    explain: ExplainDep,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """Assets, liabilities and equity at `as_of` (or `to`), with the result of the period
    (from `from`, else from the beginning) in equity, so that it balances."""
    return _statement(financial.balance_sheet, services, r, explain, date_from, date_to)


@router.get("/api/reports/general-ledger", dependencies=[require(*READERS)])
def general_ledger(
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", positioned=True)],
    explain: ExplainDep,
    account: Annotated[str, Query(description="account code, e.g. 120")],
    date_from: From = None,
    date_to: To = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """One account's lines with the running balance (debit minus credit), from its balance
    before `from`. Pages with limit and offset keep the running balance right."""
    chart = services.business.chart
    if account not in chart:
        raise invalid("account", f"{account!r} is not in the {chart.name} chart")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise invalid("from", "must not be after to")
    return financial.general_ledger(
        r.conn,
        r["ledger"]["lines"],
        chart,
        account,
        date_from,
        date_to,
        limit=limit,
        offset=offset,
        explain=explain,
        up_to=r.up_to,
    )


@router.get("/api/reports/cash-flow", dependencies=[require(*READERS)])
def cash_flow(
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", "invoices")],
    explain: ExplainDep,
    date_from: From = None,
    date_to: To = None,
    interval: Literal["day", "week", "month"] = "month",
) -> dict[str, Any]:
    """Cash in and out of the cash and bank accounts per period, with balances, and the
    inflows expected from open invoices by due date. Default: 30 days either side of
    today."""
    today = r.moment.day if r.moment is not None else services.business.today()
    start = date_from or (today - timedelta(days=30))
    end = date_to or max(start, today + timedelta(days=30))
    if start > end:
        raise invalid("from", "must not be after to")
    try:
        return receivables.cash_flow(
            r.conn,
            r["ledger"]["lines"],
            services.business.chart,
            r["invoices"],  # type: ignore[arg-type]
            start,
            end,
            interval,
            explain=explain,
        )
    except ValueError as error:
        raise invalid("interval", str(error)) from None


@router.get("/api/reports/profitability", dependencies=[require(*READERS, "sales")])
def profitability(
    r: Annotated[Reader, read_model("profitability", "customers", positioned=True)],
    explain: ExplainDep,
    by: Literal["order", "customer", "product"] = "order",
    date_from: From = None,
    date_to: To = None,
    sort: Annotated[
        Sort,
        Query(
            description="the rows' order: by order number, customer name or SKU (name), or by "
            "a figure, ascending or, with a leading -, descending (margin: the lowest first)"
        ),
    ] = "name",
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Revenue net of VAT (when invoiced), cost of goods sold (at FIFO cost, when shipped),
    gross margin and margin % per order, customer or product: a page of the rows in the
    order asked for (`total_rows` in all), the totals of them all."""
    return r["profitability"].report(  # type: ignore[attr-defined,no-any-return]
        r.conn,
        by,
        date_from=date_from,
        date_to=date_to,
        customers=r["customers"]["parties"],
        sort=sort,
        limit=limit,
        offset=offset,
        explain=explain,
        up_to=r.up_to,
    )


@router.get("/api/reports/receivables-aging", dependencies=[require(*READERS)])
def receivables_aging(
    services: ServicesDep,
    r: Annotated[Reader, read_model("invoices", "payments", "customers", dated=True)],
    explain: ExplainDep,
    sort: Annotated[
        AgingSort,
        Query(
            description="the customers' order: by name, or by what they owe in all (total), "
            "past due (overdue) or net of credit, ascending or, with a leading -, descending"
        ),
    ] = "name",
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Per customer, what was open at the end of today (or of the `as_of` moment's day, as the
    books stood then) by days past due
    (not due, 1-30, 31-60, 61-90, over 90), and the unallocated credit: a page of the
    customers in the order asked for (`total_rows` in all), the totals of them all."""
    return receivables.receivables_aging(
        r.conn,
        r["invoices"],  # type: ignore[arg-type]
        r["payments"],  # type: ignore[arg-type]
        r.moment.day if r.moment is not None else services.business.today(),
        customer_names(r),
        sort=sort,
        limit=limit,
        offset=offset,
        explain=explain,
    )


@router.get("/api/customers/{customer_id}/statement", dependencies=[require(*READERS)])
def customer_statement(
    customer_id: UUID,
    services: ServicesDep,
    r: Annotated[Reader, read_model("ledger", "customers", positioned=True)],
    explain: ExplainDep,
    date_from: From = None,
    date_to: To = None,
) -> dict[str, Any]:
    """The current-account statement (ekstre): date, document, type, due date, debit,
    credit and running balance marked B (borçlu, owes us) or A (alacaklı, we owe), from the
    opening balance carried to `from`. Without `from`, the statement covers the year of `to`
    (of today, or of the `as_of` day, without `to`) from 1 January: ask for an earlier `from`
    to list older lines (docs/decisions/0011)."""
    name = customer_name(r, customer_id)
    if date_from is None:
        year = (
            date_to or (r.moment.day if r.moment is not None else services.business.today())
        ).year
        date_from = date(year, 1, 1)
    if date_to is not None and date_from > date_to:
        raise invalid("from", "must not be after to")
    ledger = r["ledger"]
    statement = receivables.customer_statement(
        r.conn,
        ledger["lines"],
        ledger["due_dates"],
        services.business.chart,
        customer_id,
        date_from,
        date_to,
        explain=explain,
        up_to=r.up_to,
    )
    return {"name": name, **statement}


@router.get("/api/reports/reconciliation", dependencies=[require(*READERS)])
def reconciliation(
    services: ServicesDep, r: Annotated[Reader, read_model(*RECONCILED)]
) -> dict[str, Any]:
    """Sales, stock, receivables, cash and profitability as their read models have them,
    against the ledger, with the difference; `ok` when every check agrees."""
    models = {name: r[name] for name in RECONCILED}
    return reconcile(r.conn, models, services.business.chart, positions(r.conn, models))
