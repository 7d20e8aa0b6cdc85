"""What customers owe and what cash comes in: the current-account statement (ekstre), the
receivables aging and the cash flow, as queries over the ledger, invoices and payments."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args
from uuid import UUID

from sqlalchemy import Connection, Table, bindparam, func, select, union_all

from domain.ledger.chart import Chart
from domain.values import ZERO
from projections.explain import Contribution, Explanation, attach, negated, pointer
from projections.financial import (
    Totals,
    account_totals,
    cents,
    describe,
    fmt,
    from_cents,
    period,
)
from projections.invoices import AGING_BUCKETS, Invoices, aging_bucket
from projections.ledger import (
    credits,
    debits,
    journal,
    party_totals_table,
    signed,
    totals_tables,
)
from projections.payments import Payments
from projections.types import made_once, period_start_of

# The accounts a party's current account (cari hesap) is kept on, by chart role.
PARTY_ROLES = ("receivables", "customer_advances", "payables")
MAX_PERIODS = 1000


def party_accounts(chart: Chart) -> list[str]:
    return [chart.role(r) for r in PARTY_ROLES if r in chart.roles]


def marked(balance: Decimal) -> tuple[str, str | None]:
    """A balance as the statement prints it: the amount, and B (borçlu: the party owes us)
    or A (alacaklı: we owe the party); no mark when it is zero."""
    if balance > 0:
        return fmt(balance), "B"
    if balance < 0:
        return fmt(-balance), "A"
    return fmt(ZERO), None


def customer_statement(
    conn: Connection,
    lines: Table,
    due_dates: Table,
    chart: Chart,
    customer_id: UUID,
    date_from: date | None,
    date_to: date | None,
    *,
    explain: Explanation | None = None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """The party's lines on its current-account accounts in date order, with the running
    balance from its balance before `date_from`; with `up_to`, of the lines posted up to
    that position only (the statement as of it: decision 0019)."""
    accounts = party_accounts(chart)
    balance = (
        ZERO
        if date_from is None
        else balance_before(conn, lines, accounts, customer_id, date_from, up_to=up_to)
    )
    opening, opening_side = marked(balance)
    shape = (date_from is not None, date_to is not None, up_to is not None)
    query = made_once(lines, "statement", shape, lambda: _statement_query(lines, due_dates, *shape))
    params = {
        "party": customer_id,
        "accounts": accounts,
        "first": date_from,
        "last": date_to,
        "up_to": up_to,
    }
    rows = []
    total = Totals()
    for r in conn.execute(query, params).all():
        balance += r.debit - r.credit
        total += Totals(r.debit, r.credit)
        amount, side = marked(balance)
        rows.append(
            {
                "date": r.entry_date.isoformat(),
                "document": r.document,
                "type": r.source_kind,
                "source_id": str(r.source_id) if r.source_id else None,
                "description": r.description,
                "account": r.account,
                "due_date": r.due_date.isoformat() if r.due_date else None,
                "debit": str(r.debit),
                "credit": str(r.credit),
                "balance": amount,
                "side": side,
            }
        )
    closing, closing_side = marked(balance)
    answer = {
        "customer_id": str(customer_id),
        **period(date_from, date_to),
        "accounts": [describe(chart, a) for a in accounts],
        "opening_balance": opening,
        "opening_side": opening_side,
        "lines": rows,
        "debit": fmt(total.debit),
        "credit": fmt(total.credit),
        "closing_balance": closing,
        "closing_side": closing_side,
    }
    if explain is not None:
        mine = [lines.c.party_id == customer_id, lines.c.account.in_(accounts)]
        if up_to is not None:
            mine.append(lines.c.position <= up_to)
        earlier = journal(conn, lines, *mine, lines.c.entry_date < date_from) if date_from else []
        in_period = [*mine]
        if date_from is not None:
            in_period.append(lines.c.entry_date >= date_from)
        if date_to is not None:
            in_period.append(lines.c.entry_date <= date_to)
        _explain_statement(explain, answer, earlier, journal(conn, lines, *in_period))
    return attach(answer, explain)


def _cash_moved_query(lines: Table, interval: str) -> Any:
    """Debits and credits in cents per period of `interval` and account, of the `accounts`
    from `first` to `last` (parameters), from the daily totals."""
    days, _ = totals_tables(lines)
    starts = period_start_of(days.c.day, interval)
    return (
        select(
            starts, days.c.account, func.sum(cents(days.c.debit)), func.sum(cents(days.c.credit))
        )
        .where(
            days.c.account.in_(bindparam("accounts", expanding=True)),
            days.c.day.between(bindparam("first"), bindparam("last")),
        )
        .group_by(starts, days.c.account)
    )


def _statement_query(
    lines: Table, due_dates: Table, from_first: bool, to_last: bool, posted: bool
) -> Any:
    """A party's lines on the `accounts` in date order, with their documents' due dates; from
    `first` and to `last` where asked, `posted` up to the position `up_to` (parameters). (An
    invoice's due date is recorded before the journal entry its issue posts, in the same
    transaction, and never changes: a line up to a position has its due date then.)"""
    query = (
        select(
            lines.c.entry_date,
            lines.c.document,
            lines.c.source_kind,
            lines.c.source_id,
            lines.c.description,
            lines.c.account,
            lines.c.debit,
            lines.c.credit,
            due_dates.c.due_date,
        )
        .outerjoin(due_dates, due_dates.c.document_id == lines.c.source_id)
        .where(
            lines.c.party_id == bindparam("party"),
            lines.c.account.in_(bindparam("accounts", expanding=True)),
        )
        .order_by(lines.c.entry_date, lines.c.position, lines.c.line)
    )
    if from_first:
        query = query.where(lines.c.entry_date >= bindparam("first"))
    if to_last:
        query = query.where(lines.c.entry_date <= bindparam("last"))
    if posted:
        query = query.where(lines.c.position <= bindparam("up_to"))
    return query


def balance_before(
    conn: Connection,
    lines: Table,
    accounts: list[str],
    party_id: UUID,
    day: date,
    *,
    up_to: int | None = None,
) -> Decimal:
    """The party's balance (debit minus credit) on `accounts` before `day`: the month totals
    of the months before `day`'s, and the lines of its month before it — a statement from
    any day costs at most a month of the party's lines, however long its history. With
    `up_to`, of the party's lines posted up to that position (the month totals do not tell
    positions apart)."""
    month = day.replace(day=1)
    if up_to is not None:
        query = made_once(lines, "balance_posted_before", None, lambda: _posted_query(lines))
        params = {"party": party_id, "accounts": accounts, "day": day, "up_to": up_to}
        debit, credit = conn.execute(query, params).one()
        return from_cents(debit) - from_cents(credit)
    within = day > month  # (the days of its month before it, from the lines)
    query = made_once(lines, "balance_before", within, lambda: _balance_query(lines, within))
    params = {"party": party_id, "accounts": accounts, "month": month, "day": day}
    debit, credit = conn.execute(query, params).one()
    return from_cents(debit) - from_cents(credit)


def _posted_query(lines: Table) -> Any:
    """`balance_before`'s sums of the party's lines on its `accounts` dated before `day` and
    posted up to `up_to` (parameters)."""
    return select(func.sum(cents(lines.c.debit)), func.sum(cents(lines.c.credit))).where(
        lines.c.party_id == bindparam("party"),
        lines.c.account.in_(bindparam("accounts", expanding=True)),
        lines.c.entry_date < bindparam("day"),
        lines.c.position <= bindparam("up_to"),
    )


def _balance_query(lines: Table, within: bool) -> Any:
    """`balance_before`'s sums: of the month totals before `month`, and `within` it of the
    lines before `day` (parameters, with the `party` and its `accounts`)."""
    totals = party_totals_table(lines)
    party, accounts = bindparam("party"), bindparam("accounts", expanding=True)
    carried = select(cents(totals.c.debit).label("debit"), cents(totals.c.credit).label("credit"))
    carried = carried.where(
        totals.c.party_id == party,
        totals.c.account.in_(accounts),
        totals.c.month < bindparam("month"),
    )
    if within:
        edge = select(cents(lines.c.debit).label("debit"), cents(lines.c.credit).label("credit"))
        edge = edge.where(
            lines.c.party_id == party,
            lines.c.entry_date >= bindparam("month"),
            lines.c.entry_date < bindparam("day"),
            lines.c.account.in_(accounts),
        )
        carried = union_all(carried, edge)
    moved = carried.subquery()
    return select(func.sum(moved.c.debit), func.sum(moved.c.credit))


def _explain_statement(
    x: Explanation, answer: dict[str, Any], before: list[Any], rows: list[Any]
) -> None:
    """A balance marked A (we owe the party) is explained as credit minus debit, so that its
    lines add up to the amount as printed."""

    def as_printed(lines: list[Any], side: str | None) -> list[Contribution]:
        return signed(lines, -1 if side == "A" else 1)

    x.add("/opening_balance", as_printed(before, answer["opening_side"]))
    for i, line in enumerate(answer["lines"]):
        x.add(pointer("lines", i, "debit"), debits(rows[i : i + 1]))
        x.add(pointer("lines", i, "credit"), credits(rows[i : i + 1]))
        path = pointer("lines", i, "balance")
        if x.wants(path):
            x.add(path, as_printed([*before, *rows[: i + 1]], line["side"]))
    x.add("/debit", debits(rows))
    x.add("/credit", credits(rows))
    x.add("/closing_balance", as_printed([*before, *rows], answer["closing_side"]))


AgingSort = Literal["name", "total", "-total", "overdue", "-overdue", "net", "-net"]
AGING_SORTS: tuple[str, ...] = get_args(AgingSort)


def receivables_aging(
    conn: Connection,
    invoices: Invoices,
    payments: Payments,
    as_of: date,
    names: dict[UUID, str],
    *,
    sort: str = "name",
    limit: int | None = None,
    offset: int = 0,
    explain: Explanation | None = None,
) -> dict[str, Any]:
    """Per customer: what was open at the end of `as_of` by days past due, and the credit
    received but not yet set against an invoice (which lowers what is owed net). The
    customers in `sort`'s order (AGING_SORTS: by name, or by what is owed in all, past due
    or net, ascending or, with a leading "-", descending; ties by name), `limit` of them
    (all with None) from `offset`, each with its open invoices; the totals and
    `total_rows` are of them all."""
    if sort not in AGING_SORTS:
        raise ValueError(f"sort must be one of {', '.join(AGING_SORTS)}")
    bucket_names = [name for name, _, _ in AGING_BUCKETS]
    per_customer: dict[UUID, _Owed] = {}

    def customer(customer_id: UUID) -> _Owed:
        found = per_customer.get(customer_id)
        if found is None:
            found = per_customer[customer_id] = _Owed(dict.fromkeys(bucket_names, ZERO))
        return found

    for customer_id, buckets in invoices.owed_by_customer(conn, as_of).items():
        customer(customer_id).buckets.update(buckets)
    used = invoices.credit_used(conn, as_of)
    for customer_id, received in payments.received_by_customer(conn, as_of).items():
        left = received - used.get(customer_id, ZERO)
        if left:
            customer(customer_id).credit = left

    totals = dict.fromkeys([*bucket_names, "total", "unallocated_credit", "net"], ZERO)
    for owed in per_customer.values():
        for key, value in owed.figures().items():
            totals[key] += value
    by_name = sorted(per_customer, key=lambda c: (names.get(c) or "", str(c)))
    if sort == "name":
        ordered = by_name
    else:
        figure, sign = sort.lstrip("-"), -1 if sort.startswith("-") else 1
        # (sorted is stable: equal figures keep the order of the names)
        ordered = sorted(by_name, key=lambda c: sign * per_customer[c].figure(figure))
    page = ordered[offset:] if limit is None else ordered[offset : offset + limit]
    # The open invoices of the page's customers (of every customer, to explain the totals).
    listed = None if explain is not None or len(page) == len(ordered) else page
    if listed is None or listed:
        for item in invoices.open_as_of(conn, as_of, customers=listed):
            days = (as_of - item["due_date"]).days
            per_customer[item["customer_id"]].invoices.append((item, days, aging_bucket(days)))
    rows = []
    for customer_id in page:
        owed = per_customer[customer_id]
        rows.append(
            {
                "customer_id": str(customer_id),
                "name": names.get(customer_id),
                **{k: fmt(v) for k, v in owed.figures().items()},
                "invoices": [
                    {
                        "invoice_id": str(item["id"]),
                        "number": item["number"],
                        "invoice_date": item["invoice_date"].isoformat(),
                        "due_date": item["due_date"].isoformat(),
                        "days_past_due": max(days, 0),
                        "bucket": bucket,
                        "open_amount": fmt(item["open_amount"]),
                    }
                    for item, days, bucket in owed.invoices
                ],
            }
        )
    answer = {
        "as_of": as_of.isoformat(),
        "buckets": bucket_names,
        "sort": sort,
        "customers": rows,
        "total_rows": len(ordered),
        "limit": limit,
        "offset": offset,
        "totals": {k: fmt(v) for k, v in totals.items()},
    }
    if explain is not None:
        _explain_aging(explain, conn, invoices, payments, answer, as_of, per_customer)
    return attach(answer, explain)


@dataclass
class _Owed:
    """What one customer owes as of the aging's day: by bucket, its open invoices (each with
    its days past due and bucket), and its unallocated credit."""

    buckets: dict[str, Decimal]
    invoices: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)
    credit: Decimal = ZERO

    def figures(self) -> dict[str, Decimal]:
        total = sum(self.buckets.values(), ZERO)
        return {
            **self.buckets,
            "total": total,
            "unallocated_credit": self.credit,
            "net": total - self.credit,
        }

    def figure(self, name: str) -> Decimal:
        """total, net, or overdue: what is past due (every bucket but not_due)."""
        if name == "overdue":
            return sum((v for k, v in self.buckets.items() if k != "not_due"), ZERO)
        return self.figures()[name]


def _explain_aging(
    x: Explanation,
    conn: Connection,
    invoices: Invoices,
    payments: Payments,
    answer: dict[str, Any],
    as_of: date,
    per_customer: dict[UUID, _Owed],
) -> None:
    """An invoice's open amount: its total less what settled it by `as_of`; a customer's
    credit: the unallocated parts of its payments less the credit used on invoices. The
    totals by every customer's, the page's or not."""
    ids = [item["id"] for owed in per_customer.values() for item, _, _ in owed.invoices]
    makeup = invoices.makeup(conn, ids, as_of)
    received = payments.unallocated_received(conn, as_of)
    used = invoices.credit_uses(conn, as_of)
    shown = {UUID(c["customer_id"]): i for i, c in enumerate(answer["customers"])}
    totals: dict[str, list[Contribution]] = defaultdict(list)
    for customer_id, owed in per_customer.items():
        row = shown.get(customer_id)
        figures: dict[str, list[Contribution]] = {b: [] for b in answer["buckets"]}
        for j, (item, _, bucket) in enumerate(owed.invoices):
            found = makeup[item["id"]]
            if row is not None:
                x.add(pointer("customers", row, "invoices", j, "open_amount"), found)
            figures[bucket] += found
        figures["total"] = [f for b in answer["buckets"] for f in figures[b]]
        credit = [*received.get(customer_id, ()), *negated(used.get(customer_id, ()))]
        figures["unallocated_credit"] = credit
        figures["net"] = [*figures["total"], *negated(credit)]
        for name, found in figures.items():
            if row is not None:
                x.add(pointer("customers", row, name), found)
            totals[name] += found
    for name in answer["totals"]:
        x.add(pointer("totals", name), totals[name])


# -- cash flow ---------------------------------------------------------------------------------


def period_start(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_period(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def period_label(start: date, interval: str) -> str:
    if interval == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == "month":
        return start.strftime("%Y-%m")
    return start.isoformat()


def periods(date_from: date, date_to: date, interval: str) -> list[tuple[date, date]]:
    """The periods covering [date_from, date_to], each clipped to it: (first day, last day)."""
    out = []
    start = period_start(date_from, interval)
    while start <= date_to:
        following = next_period(start, interval)
        out.append((max(start, date_from), min(following - timedelta(days=1), date_to)))
        start = following
        if len(out) > MAX_PERIODS:
            raise ValueError(f"more than {MAX_PERIODS} periods: choose a longer interval")
    return out


def cash_flow(
    conn: Connection,
    lines: Table,
    chart: Chart,
    invoices: Invoices,
    date_from: date,
    date_to: date,
    interval: str,
    *,
    explain: Explanation | None = None,
) -> dict[str, Any]:
    """Cash in (debits) and out (credits) of the cash and bank accounts per period, with
    the balance at each period's end; and the inflows expected from the invoices open now by
    their due date (what is overdue before the first period is shown apart). Read from
    totals per day (docs/decisions/0008); explained by the lines and the open invoices."""
    accounts = [chart.role(r) for r in ("cash", "bank")]
    spans = periods(date_from, date_to, interval)
    opening = account_totals(conn, lines, before=date_from, accounts=accounts)
    balance = sum((t.balance for t in opening.values()), ZERO)
    query = made_once(lines, "cash_moved", interval, lambda: _cash_moved_query(lines, interval))
    params = {"accounts": accounts, "first": date_from, "last": date_to}
    moved = {
        (start, account): Totals(from_cents(debit), from_cents(credit))
        for start, account, debit, credit in conn.execute(query, params).all()
    }
    overdue, owed = invoices.owed_by_due_date(conn, date_from, date_to, interval)
    expected: dict[date, Decimal] = defaultdict(lambda: ZERO, owed)

    rows = []
    total_in = total_out = total_expected = ZERO
    for first, last in spans:
        key = period_start(first, interval)
        by_account = []
        cash_in = cash_out = ZERO
        for account in accounts:
            t = moved.get((key, account), Totals())
            cash_in += t.debit
            cash_out += t.credit
            by_account.append({"account": account, "in": fmt(t.debit), "out": fmt(t.credit)})
        balance += cash_in - cash_out
        total_in += cash_in
        total_out += cash_out
        total_expected += expected[key]
        rows.append(
            {
                "period": period_label(key, interval),
                "start": first.isoformat(),
                "end": last.isoformat(),
                "cash_in": fmt(cash_in),
                "cash_out": fmt(cash_out),
                "net": fmt(cash_in - cash_out),
                "closing_balance": fmt(balance),
                "by_account": by_account,
                "expected_in": fmt(expected[key]),
            }
        )
    answer = {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "interval": interval,
        "accounts": [describe(chart, a) for a in accounts],
        "opening_balance": fmt(sum((t.balance for t in opening.values()), ZERO)),
        "periods": rows,
        "totals": {
            "cash_in": fmt(total_in),
            "cash_out": fmt(total_out),
            "net": fmt(total_in - total_out),
            "expected_in": fmt(total_expected),
        },
        "closing_balance": fmt(balance),
        "expected_overdue": fmt(overdue),
    }
    if explain is not None:
        open_items = invoices.open_as_of(conn)
        _explain_cash_flow(explain, conn, lines, invoices, open_items, answer, accounts)
    return attach(answer, explain)


def _explain_cash_flow(
    x: Explanation,
    conn: Connection,
    lines: Table,
    invoices: Invoices,
    open_items: list[dict[str, Any]],
    answer: dict[str, Any],
    accounts: list[str],
) -> None:
    """Actuals: the cash and bank lines; expected: the open invoices (total less what
    settled them so far) by the period of their due date."""
    interval = answer["interval"]
    date_from, date_to = date.fromisoformat(answer["from"]), date.fromisoformat(answer["to"])
    cash = lines.c.account.in_(accounts)
    before = signed(journal(conn, lines, cash, lines.c.entry_date < date_from))
    rows = journal(
        conn, lines, cash, lines.c.entry_date >= date_from, lines.c.entry_date <= date_to
    )
    moved: dict[date, list[Any]] = defaultdict(list)
    for r in rows:
        moved[period_start(r.entry_date, interval)].append(r)
    makeup = invoices.makeup(conn, [item["id"] for item in open_items])
    expected: dict[date, list[Contribution]] = defaultdict(list)
    overdue: list[Contribution] = []
    for item in open_items:
        due = item["due_date"]
        if due < date_from:
            overdue += makeup[item["id"]]
        elif due <= date_to:
            expected[period_start(due, interval)] += makeup[item["id"]]

    x.add("/opening_balance", before)
    so_far = list(before)
    for i, row in enumerate(answer["periods"]):
        mine = moved[period_start(date.fromisoformat(row["start"]), interval)]
        so_far += signed(mine)
        x.add(pointer("periods", i, "cash_in"), debits(mine))
        x.add(pointer("periods", i, "cash_out"), credits(mine))
        x.add(pointer("periods", i, "net"), signed(mine))
        x.add(pointer("periods", i, "closing_balance"), so_far)
        for j, account in enumerate(row["by_account"]):
            on = [r for r in mine if r.account == account["account"]]
            x.add(pointer("periods", i, "by_account", j, "in"), debits(on))
            x.add(pointer("periods", i, "by_account", j, "out"), credits(on))
        x.add(
            pointer("periods", i, "expected_in"),
            expected[period_start(date.fromisoformat(row["start"]), interval)],
        )
    x.add("/totals/cash_in", debits(rows))
    x.add("/totals/cash_out", credits(rows))
    x.add("/totals/net", signed(rows))
    x.add("/totals/expected_in", [c for contributions in expected.values() for c in contributions])
    x.add("/closing_balance", [*before, *signed(rows)])
    x.add("/expected_overdue", overdue)
