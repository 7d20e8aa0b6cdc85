"""Financial statements as queries over the ledger's lines: trial balance (mizan), income
statement, balance sheet and general ledger (defter-i kebir).

Sums run in SQL on the scaled integers (cents), so they are exact and do not slow down with
the number of lines in Python. Account names and kinds come from the chart; every amount
leaves as a string. Signed balances are debit minus credit unless a field says otherwise.
"""

from __future__ import annotations

from calendar import monthrange
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    Subquery,
    Table,
    bindparam,
    func,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)

from domain.ledger.chart import AccountKind, Chart
from domain.values import ZERO
from projections.explain import (
    Contribution,
    Explanation,
    attach,
    negated,
    pointer,
    running_balances,
)
from projections.ledger import (
    by_account,
    credits,
    dated,
    debits,
    journal,
    signed,
    totals_tables,
)
from projections.types import made_once

CENTS = Decimal("0.01")


def fmt(amount: Decimal) -> str:
    """An amount as the API gives it: a string with two decimals."""
    return str(amount.quantize(CENTS))


def cents(column: Any) -> Any:
    return type_coerce(column, BigInteger)


def from_cents(raw: Any) -> Decimal:
    return (Decimal(int(raw or 0)) * CENTS).quantize(CENTS)


@dataclass(frozen=True)
class Totals:
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.debit + other.debit, self.credit + other.credit)


def account_totals(
    conn: Connection,
    lines: Table,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    before: date | None = None,
    accounts: Iterable[str] | None = None,
    source_kind: str | None = None,
    up_to: int | None = None,
) -> dict[str, Totals]:
    """Debits and credits per account over the lines dated in [date_from, date_to], or
    before `before`; only of `accounts`, or of entries for one kind of source, if given;
    only of the lines posted up to position `up_to`, if given (the books as they stood then).

    Read from the ledger's running totals, not the lines: the whole months of the period
    from the monthly totals, the days of its edge months from the daily ones. A year costs
    some twelve rows per account and kind of source, however many lines it holds. Up to a
    position, the totals do not tell: the lines are added up (the ledger only ever adds
    lines, each with its position, so those up to it are the books as they stood)."""
    last = date_to
    if before is not None:
        if before == date.min:
            return {}
        last = min(last or date.max, before - timedelta(days=1))
    found = period_shape(date_from, last)
    if found is None:
        return {}
    period, params = found
    only = (accounts is not None, source_kind is not None)
    if up_to is None:
        shape = (period, *only)
        query = made_once(lines, "account_totals", shape, lambda: _totals_statement(lines, *shape))
    else:
        params = {"first": date_from, "last": last, "up_to": up_to}
        bounds = (date_from is not None, last is not None)
        query = made_once(
            lines, "lines_totals", (bounds, *only), lambda: _lines_statement(lines, bounds, *only)
        )
    if accounts is not None:
        params["accounts"] = list(accounts)
    if source_kind is not None:
        params["source_kind"] = source_kind
    return {
        account: Totals(from_cents(debit), from_cents(credit))
        for account, debit, credit in conn.execute(query, params).all()
    }


# How a period reads the daily and monthly totals: how many spans of days, and which of the
# month bounds it has (None: no whole month).
PeriodShape = tuple[int, tuple[bool, bool] | None]


def period_shape(
    first: date | None, last: date | None
) -> tuple[PeriodShape, dict[str, Any]] | None:
    """The days [first, last] (open where None) as the daily and monthly totals read them
    (`split_into_months`): the shape of the statement (`period_conditions`) and its
    parameters; None when they hold no day."""
    day_spans, month_span = split_into_months(first, last)
    if not day_spans and month_span is None:
        return None
    params: dict[str, Any] = {}
    for i, (a, b) in enumerate(day_spans):
        params[f"day_from_{i}"], params[f"day_to_{i}"] = a, b
    bounds = None
    if month_span is not None:
        month_from, month_to = month_span
        bounds = (month_from is not None, month_to is not None)
        params.update(month_from=month_from, month_to=month_to)
    return (len(day_spans), bounds), params


def period_conditions(
    day: Any, month: Any, shape: PeriodShape
) -> tuple[Any | None, list[Any] | None]:
    """The conditions of a period of `shape` on the daily totals' `day` column and on the
    monthly totals' `month` column, its dates bound as `period_shape` names them; None for a
    table the period does not read."""
    day_spans, bounds = shape
    days = None
    if day_spans:
        days = or_(
            *(
                day.between(bindparam(f"day_from_{i}"), bindparam(f"day_to_{i}"))
                for i in range(day_spans)
            )
        )
    months = None
    if bounds is not None:
        has_first, has_last = bounds
        months = [month >= bindparam("month_from")] if has_first else []
        months += [month <= bindparam("month_to")] if has_last else []
    return days, months


def period_rows(
    days: Table, months: Table, shape: PeriodShape, part: Callable[..., Select[Any]]
) -> Subquery:
    """The rows of the daily and of the monthly totals that a period of `shape` reads, as
    one subquery: each table's selected by `part(table, *conditions)`."""
    in_days, in_months = period_conditions(days.c.day, months.c.month, shape)
    parts = []
    if in_days is not None:
        parts.append(part(days, in_days))
    if in_months is not None:
        parts.append(part(months, *in_months))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def _totals_statement(
    lines: Table, period: PeriodShape, by_accounts: bool, by_source: bool
) -> Select[Any]:
    """Debit and credit in cents per account over a period of shape `period`, of the
    `accounts` and of the `source_kind` if asked (parameters)."""
    days, months = totals_tables(lines)

    def part(table: Table, *in_period: Any) -> Select[Any]:
        only = [table.c.account.in_(bindparam("accounts", expanding=True))] if by_accounts else []
        if by_source:
            only.append(table.c.source_kind == bindparam("source_kind"))
        return _totals_query(table, *in_period, *only)

    moved = period_rows(days, months, period, part)
    return select(
        moved.c.account, func.sum(cents(moved.c.debit)), func.sum(cents(moved.c.credit))
    ).group_by(moved.c.account)


def posted_by(lines: Table, up_to: int | None) -> list[Any]:
    """The condition that a line was posted up to position `up_to` (none if None)."""
    return [] if up_to is None else [lines.c.position <= up_to]


def _lines_statement(
    lines: Table, bounds: tuple[bool, bool], by_accounts: bool, by_source: bool
) -> Select[Any]:
    """`_totals_statement` from the lines themselves, those posted up to the position
    `up_to` (a parameter), dated from `first` and to `last` where `bounds` says."""
    has_first, has_last = bounds
    where = [lines.c.position <= bindparam("up_to")]
    if has_first:
        where.append(lines.c.entry_date >= bindparam("first"))
    if has_last:
        where.append(lines.c.entry_date <= bindparam("last"))
    if by_accounts:
        where.append(lines.c.account.in_(bindparam("accounts", expanding=True)))
    if by_source:
        where.append(lines.c.source_kind == bindparam("source_kind"))
    return (
        select(lines.c.account, func.sum(cents(lines.c.debit)), func.sum(cents(lines.c.credit)))
        .where(*where)
        .group_by(lines.c.account)
    )


def _totals_query(table: Table, *where: Any) -> Select[Any]:
    return select(table.c.account, table.c.source_kind, table.c.debit, table.c.credit).where(*where)


def split_into_months(
    first: date | None, last: date | None
) -> tuple[list[tuple[date, date]], tuple[date | None, date | None] | None]:
    """The days [first, last] (open where None) as the days of its edge months that are not
    whole months, as (from, to) spans, and the first days of the whole months it covers, as
    (from, to), or None when it covers none."""
    if first is not None and last is not None and first > last:
        return [], None
    spans: list[tuple[date, date]] = []
    month_from = None
    if first is not None:
        month_from = first.replace(day=1)
        if first.day != 1:
            month_end = last_of_month(first)
            if last is not None and last <= month_end:
                return [(first, last)], None
            spans.append((first, month_end))
            month_from = month_end + timedelta(days=1)
    month_to = None
    if last is not None:
        month_to = last.replace(day=1)
        if last != last_of_month(last):
            spans.append((month_to, last))
            month_to = (month_to - timedelta(days=1)).replace(day=1)
    if month_from is not None and month_to is not None and month_from > month_to:
        return spans, None
    return spans, (month_from, month_to)


def last_of_month(day: date) -> date:
    return day.replace(day=monthrange(day.year, day.month)[1])


def describe(chart: Chart, code: str) -> dict[str, Any]:
    account = chart.accounts.get(code)
    if account is None:
        return {"account": code, "name": None, "kind": None}
    return {"account": code, "name": account.name, "kind": account.kind.value}


def kind_of(chart: Chart, code: str) -> AccountKind | None:
    account = chart.accounts.get(code)
    return account.kind if account is not None else None


def period(date_from: date | None, date_to: date | None) -> dict[str, str | None]:
    return {
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
    }


def trial_balance(
    conn: Connection,
    lines: Table,
    chart: Chart,
    date_from: date | None,
    date_to: date | None,
    *,
    explain: Explanation | None = None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """Per account: the balance before the period, its debits and credits in the period and
    the balance at its end, as debit or credit balance (borç / alacak bakiye); of the lines
    posted up to position `up_to`, if given."""
    opening = account_totals(conn, lines, before=date_from, up_to=up_to) if date_from else {}
    moved = account_totals(conn, lines, date_from=date_from, date_to=date_to, up_to=up_to)
    rows = []
    total = Totals()
    total_opening = ZERO
    debit_balances = credit_balances = ZERO
    for code in sorted(opening.keys() | moved.keys()):
        before = opening.get(code, Totals()).balance
        movement = moved.get(code, Totals())
        closing = before + movement.balance
        debit_balances += max(closing, ZERO)
        credit_balances += max(-closing, ZERO)
        total += movement
        total_opening += before
        rows.append(
            {
                **describe(chart, code),
                "opening": fmt(before),
                "debit": fmt(movement.debit),
                "credit": fmt(movement.credit),
                "balance": fmt(closing),
                "debit_balance": fmt(max(closing, ZERO)),
                "credit_balance": fmt(max(-closing, ZERO)),
            }
        )
    answer = {
        **period(date_from, date_to),
        "accounts": rows,
        "totals": {
            "opening": fmt(total_opening),
            "debit": fmt(total.debit),
            "credit": fmt(total.credit),
            "debit_balance": fmt(debit_balances),
            "credit_balance": fmt(credit_balances),
        },
        "balanced": total.debit == total.credit
        and debit_balances == credit_balances
        and total_opening == 0,
    }
    if explain is not None:
        _explain_trial_balance(explain, conn, lines, answer, date_from, date_to, up_to)
    return attach(answer, explain)


def _explain_trial_balance(
    x: Explanation,
    conn: Connection,
    lines: Table,
    answer: dict[str, Any],
    date_from: date | None,
    date_to: date | None,
    up_to: int | None,
) -> None:
    """Opening: the lines before the period; debit and credit: the period's lines; balances:
    every line up to the end, on the side the balance falls."""
    rows = journal(conn, lines, *dated(lines, None, date_to), *posted_by(lines, up_to))
    before = [r for r in rows if date_from is not None and r.entry_date < date_from]
    moved = rows[len(before) :] if date_from is not None else rows
    opening, movement = by_account(before), by_account(moved)
    totals: dict[str, list[Contribution]] = defaultdict(list)
    for i, row in enumerate(answer["accounts"]):
        code = row["account"]
        everything = [*opening.get(code, ()), *movement.get(code, ())]
        closing = sum((r.debit - r.credit for r in everything), ZERO)
        figures = {
            "opening": signed(opening.get(code, ())),
            "debit": debits(movement.get(code, ())),
            "credit": credits(movement.get(code, ())),
            "balance": signed(everything),
            "debit_balance": signed(everything) if closing > 0 else [],
            "credit_balance": signed(everything, -1) if closing < 0 else [],
        }
        for name, found in figures.items():
            x.add(pointer("accounts", i, name), found)
            totals[name] += found
    for name in ("opening", "debit", "credit", "debit_balance", "credit_balance"):
        x.add(pointer("totals", name), totals[name])


PRIOR_RESULT = "Prior periods' result"
CURRENT_RESULT = "Current period's result"
RESULT_KINDS = (AccountKind.INCOME, AccountKind.EXPENSE)


def _section(
    chart: Chart, totals: dict[str, Totals], kind: AccountKind, sign: int
) -> tuple[list[dict[str, Any]], Decimal]:
    rows = []
    total = ZERO
    for code in sorted(totals):
        if kind_of(chart, code) != kind:
            continue
        amount = sign * totals[code].balance
        total += amount
        rows.append({**describe(chart, code), "amount": fmt(amount)})
    return rows, total


def _result(chart: Chart, totals: dict[str, Totals]) -> Decimal:
    """Income less expenses over `totals` (the profit those lines make)."""
    _, income = _section(chart, totals, AccountKind.INCOME, -1)
    _, expenses = _section(chart, totals, AccountKind.EXPENSE, 1)
    return income - expenses


def income_statement(
    conn: Connection,
    lines: Table,
    chart: Chart,
    date_from: date | None,
    date_to: date | None,
    *,
    explain: Explanation | None = None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """Income and expense accounts over the period, and the net profit (negative: a loss).
    Contra accounts (returns, discounts) reduce their section. Of the lines posted up to
    position `up_to`, if given."""
    moved = account_totals(conn, lines, date_from=date_from, date_to=date_to, up_to=up_to)
    income, total_income = _section(chart, moved, AccountKind.INCOME, -1)
    expenses, total_expenses = _section(chart, moved, AccountKind.EXPENSE, 1)
    answer = {
        **period(date_from, date_to),
        "income": income,
        "total_income": fmt(total_income),
        "expenses": expenses,
        "total_expenses": fmt(total_expenses),
        "net_profit": fmt(total_income - total_expenses),
    }
    if explain is not None:
        posted = posted_by(lines, up_to)
        accounts = by_account(journal(conn, lines, *dated(lines, date_from, date_to), *posted))
        income_lines = _section_lines(explain, accounts, answer, "income", -1)
        expense_lines = _section_lines(explain, accounts, answer, "expenses", 1)
        explain.add("/total_income", income_lines)
        explain.add("/total_expenses", expense_lines)
        explain.add("/net_profit", [*income_lines, *negated(expense_lines)])
    return attach(answer, explain)


def _section_lines(
    x: Explanation, accounts: dict[str, list[Any]], answer: dict[str, Any], key: str, sign: int
) -> list[Contribution]:
    """Explain each account row of a statement's section by its lines, signed as the section
    shows amounts; answer all of them (for the section's total)."""
    found: list[Contribution] = []
    for i, row in enumerate(answer[key]):
        if row["account"] is None:
            continue
        mine = signed(accounts.get(row["account"], ()), sign)
        x.add(pointer(key, i, "amount"), mine)
        found += mine
    return found


def balance_sheet(
    conn: Connection,
    lines: Table,
    chart: Chart,
    date_from: date | None,
    date_to: date | None,
    *,
    explain: Explanation | None = None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """Assets, liabilities and equity at the end of `date_to`. Income and expenses are not
    closed into equity by entries, so the result of the period (from `date_from`, or from
    the beginning) is shown in equity, and the result before it as prior periods' result:
    assets = liabilities + equity, always. Of the lines posted up to position `up_to`, if
    given."""
    closing = account_totals(conn, lines, date_to=date_to, up_to=up_to)
    assets, total_assets = _section(chart, closing, AccountKind.ASSET, 1)
    liabilities, total_liabilities = _section(chart, closing, AccountKind.LIABILITY, -1)
    equity, total_equity = _section(chart, closing, AccountKind.EQUITY, -1)
    if date_from is not None:
        prior = _result(chart, account_totals(conn, lines, before=date_from, up_to=up_to))
        current = _result(
            chart,
            account_totals(conn, lines, date_from=date_from, date_to=date_to, up_to=up_to),
        )
        equity.append({"account": None, "name": PRIOR_RESULT, "amount": fmt(prior)})
    else:
        prior = ZERO
        current = _result(chart, closing)
    equity.append({"account": None, "name": CURRENT_RESULT, "amount": fmt(current)})
    total_equity += prior + current
    unclassified = [describe(chart, code) for code in sorted(closing) if not kind_of(chart, code)]
    answer = {
        "as_of": date_to.isoformat() if date_to else None,
        **period(date_from, date_to),
        "assets": assets,
        "total_assets": fmt(total_assets),
        "liabilities": liabilities,
        "total_liabilities": fmt(total_liabilities),
        "equity": equity,
        "total_equity": fmt(total_equity),
        "current_period_profit": fmt(current),
        "total_liabilities_and_equity": fmt(total_liabilities + total_equity),
        "balanced": total_assets == total_liabilities + total_equity and not unclassified,
        "unclassified_accounts": unclassified,
    }
    if explain is not None:
        _explain_balance_sheet(explain, conn, lines, chart, answer, date_from, date_to, up_to)
    return attach(answer, explain)


def _explain_balance_sheet(
    x: Explanation,
    conn: Connection,
    lines: Table,
    chart: Chart,
    answer: dict[str, Any],
    date_from: date | None,
    date_to: date | None,
    up_to: int | None,
) -> None:
    """Every line up to the end, per account; the results are the income and expense lines
    (credit minus debit) before `from` and from it."""
    rows = journal(conn, lines, *dated(lines, None, date_to), *posted_by(lines, up_to))
    accounts = by_account(rows)
    assets = _section_lines(x, accounts, answer, "assets", 1)
    liabilities = _section_lines(x, accounts, answer, "liabilities", -1)
    equity = _section_lines(x, accounts, answer, "equity", -1)
    results = [r for r in rows if kind_of(chart, r.account) in RESULT_KINDS]
    prior = [r for r in results if date_from is not None and r.entry_date < date_from]
    current = signed(results[len(prior) :] if date_from is not None else results, -1)
    for i, row in enumerate(answer["equity"]):
        if row["name"] == PRIOR_RESULT:
            x.add(pointer("equity", i, "amount"), signed(prior, -1))
        elif row["name"] == CURRENT_RESULT:
            x.add(pointer("equity", i, "amount"), current)
    equity += signed(results, -1)
    x.add("/total_assets", assets)
    x.add("/total_liabilities", liabilities)
    x.add("/total_equity", equity)
    x.add("/current_period_profit", current)
    x.add("/total_liabilities_and_equity", [*liabilities, *equity])


def general_ledger(
    conn: Connection,
    lines: Table,
    chart: Chart,
    account: str,
    date_from: date | None,
    date_to: date | None,
    *,
    limit: int,
    offset: int,
    explain: Explanation | None = None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """One account's lines in date order with the running balance (debit minus credit),
    starting from its balance before `date_from`; of the lines posted up to position
    `up_to`, if given (then its totals are added up from those lines).

    What a page costs does not grow with the history or the period: the period's debits,
    credits and number of lines, and the balance a page starts from, are read from the daily
    and monthly totals (for a page further on: the totals before its first day and that
    day's earlier lines); the page itself from the account's index in ledger order, a page
    further on found by stepping over the index alone."""
    opening = (
        account_totals(conn, lines, before=date_from, accounts=[account], up_to=up_to)
        if date_from
        else {}
    )
    start = opening.get(account, Totals()).balance
    posted = posted_by(lines, up_to)
    in_period = [lines.c.account == account, *dated(lines, date_from, date_to), *posted]
    if up_to is None:
        debit, credit, count = _period_totals(conn, lines, account, date_from, date_to)
    else:
        sums = (func.sum(cents(lines.c.debit)), func.sum(cents(lines.c.credit)), func.count())
        debits_, credits_, count = conn.execute(select(*sums).where(*in_period)).one()
        debit, credit = from_cents(debits_), from_cents(credits_)
    order = (lines.c.entry_date, lines.c.position, lines.c.line)
    page = (
        select(
            *order,
            lines.c.entry_id,
            lines.c.document,
            lines.c.source_kind,
            lines.c.source_id,
            lines.c.description,
            lines.c.memo,
            lines.c.party_id,
            lines.c.debit,
            lines.c.credit,
        )
        .where(*in_period)
        .order_by(*order)
        .limit(limit)
    )
    balance, found = start, True
    if offset:
        first = conn.execute(
            select(*order).where(*in_period).order_by(*order).offset(offset).limit(1)
        ).one_or_none()
        found = first is not None
        if first is not None:
            page = page.where(tuple_(*order) >= tuple_(*first))
            balance = _balance_before(conn, lines, account, *first, up_to=up_to)
    rows = []
    for r in conn.execute(page).all() if found else ():
        balance += r.debit - r.credit
        rows.append(
            {
                "date": r.entry_date.isoformat(),
                "position": r.position,
                "entry_id": str(r.entry_id),
                "line": r.line,
                "document": r.document,
                "type": r.source_kind,
                "source_id": str(r.source_id) if r.source_id else None,
                "description": r.description,
                "memo": r.memo,
                "party_id": str(r.party_id) if r.party_id else None,
                "debit": str(r.debit),
                "credit": str(r.credit),
                "balance": fmt(balance),
            }
        )
    answer = {
        **describe(chart, account),
        **period(date_from, date_to),
        "opening_balance": fmt(start),
        "lines": rows,
        "debit": fmt(debit),
        "credit": fmt(credit),
        "closing_balance": fmt(start + debit - credit),
        "total_lines": count,
        "limit": limit,
        "offset": offset,
    }
    if explain is not None:
        earlier = (
            journal(
                conn, lines, lines.c.account == account, lines.c.entry_date < date_from, *posted
            )
            if date_from is not None
            else []
        )
        period_lines = journal(conn, lines, *in_period)
        page = period_lines[offset : offset + limit]
        for i, line in enumerate(page):
            explain.add(pointer("lines", i, "debit"), debits([line]))
            explain.add(pointer("lines", i, "credit"), credits([line]))
        brought = signed(earlier)
        running_balances(
            explain,
            [pointer("lines", i, "balance") for i in range(len(page))],
            [*brought, *signed(period_lines[:offset])],
            signed(page),
        )
        explain.add("/opening_balance", brought)
        explain.add("/debit", debits(period_lines))
        explain.add("/credit", credits(period_lines))
        explain.add("/closing_balance", [*brought, *signed(period_lines)])
        explain.count("/total_lines", signed(period_lines))
    return attach(answer, explain)


def _period_totals(
    conn: Connection, lines: Table, account: str, date_from: date | None, date_to: date | None
) -> tuple[Decimal, Decimal, int]:
    """An account's debits, credits and number of lines dated in [date_from, date_to], from
    the daily and monthly totals."""
    found = period_shape(date_from, date_to)
    if found is None:
        return ZERO, ZERO, 0
    shape, params = found
    query = made_once(lines, "period_totals", shape, lambda: _period_statement(lines, shape))
    debit, credit, count = conn.execute(query, {**params, "account": account}).one()
    return from_cents(debit), from_cents(credit), int(count or 0)


def _period_statement(lines: Table, shape: PeriodShape) -> Select[Any]:
    """Debit and credit in cents and the number of lines of the `account` (a parameter) over
    a period of `shape`."""
    moved = period_rows(*totals_tables(lines), shape, _lines_totals)
    return select(
        func.sum(cents(moved.c.debit)), func.sum(cents(moved.c.credit)), func.sum(moved.c.lines)
    )


def _lines_totals(table: Table, *where: Any) -> Select[Any]:
    account = table.c.account == bindparam("account")
    return select(table.c.debit, table.c.credit, table.c.lines).where(account, *where)


def _balance_before(
    conn: Connection,
    lines: Table,
    account: str,
    day: date,
    position: int,
    line: int,
    *,
    up_to: int | None = None,
) -> Decimal:
    """An account's balance before its line (`day`, `position`, `line`) in ledger order: the
    totals of the days before (of the lines posted up to `up_to`, if given), and that day's
    lines before it (posted before it, so up to `up_to` too)."""
    before = account_totals(conn, lines, before=day, accounts=[account], up_to=up_to)
    same_day = conn.execute(
        select(func.sum(cents(lines.c.debit) - cents(lines.c.credit))).where(
            lines.c.account == account,
            lines.c.entry_date == day,
            tuple_(lines.c.position, lines.c.line) < tuple_(position, line),
        )
    ).scalar()
    return before.get(account, Totals()).balance + from_cents(same_day)
