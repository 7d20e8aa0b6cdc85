"""`tekil audit`: reconcile, history and trail, any report as of a past moment, seal and
verify the store, export and import it."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from api.services import Services
from replay.chain import CHECKPOINT_EVERY, Seal, seal
from replay.common import catch_up, db_option, open_services
from replay.transfer import ImportRefused, import_lines, write_export


@click.group()
def audit() -> None:
    """Audit and replay: where every figure came from, any report as it stood at a past
    moment, and proof that the store and the reports are intact and agree."""


@audit.command("reconcile")
@db_option
@click.option(
    "--catch-up/--no-catch-up",
    "bring_up",
    default=True,
    show_default=True,
    help="first bring the read models up to the head of the store",
)
@click.pass_context
def audit_reconcile(ctx: click.Context, database_url: str, bring_up: bool) -> None:
    """Check sales, stock, receivables, cash and profitability in their read models against
    the ledger, and that the ledger balances. Exit code 0 when all agree, 1 otherwise."""
    from projections.reconciliation import READ_MODELS, positions, reconcile

    services = open_services(database_url)
    try:
        if bring_up:
            catch_up(services)
        models = {n: services.reads[n] for n in READ_MODELS if n in services.reads.projections}
        with services.reads.reader.connect() as conn:
            report = reconcile(conn, models, services.business.chart, positions(conn, models))
    finally:
        services.close()
    for check in report["checks"]:
        mark = "ok  " if check["ok"] else "FAIL"
        click.echo(
            f"{mark} {check['name']:<22} {check['read_model']}: {check['read_model_amount']}  "
            f"{check['ledger']}: {check['ledger_amount']}  difference: {check['difference']}"
        )
    where = ", ".join(f"{n} {p}" for n, p in report["positions"].items())
    click.echo(f"read models at: {where}")
    click.echo("all checks agree" if report["ok"] else "reconciliation FAILED")
    ctx.exit(0 if report["ok"] else 1)


# -- any report as of a past moment ---------------------------------------------------------

REPORTS = {
    "pipeline": "/api/reports/pipeline",
    "lead-funnel": "/api/reports/lead-funnel",
    "stock": "/api/reports/stock",
    "cash-flow": "/api/reports/cash-flow",
    "profitability": "/api/reports/profitability",
    "trial-balance": "/api/reports/trial-balance",
    "income-statement": "/api/reports/income-statement",
    "balance-sheet": "/api/reports/balance-sheet",
    "receivables-aging": "/api/reports/receivables-aging",
    "general-ledger": "/api/reports/general-ledger",
    "reconciliation": "/api/reports/reconciliation",
    "customer-statement": "/api/customers/{customer}/statement",
}


@audit.command("as-of")
@click.argument("moment")
@click.argument("report", type=click.Choice(sorted(REPORTS)))
@click.option("--customer", help="the customer, for customer-statement")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="a report option, as the API takes it: -o by=product, -o account=120, -o from=2026-01-01",
)
@db_option
def audit_as_of(
    moment: str, report: str, customer: str | None, options: tuple[str, ...], database_url: str
) -> None:
    """REPORT as it stood at MOMENT (a position, a day or an instant), replayed from the store
    into a temporary read model: the very query the API answers with, on the past. (The
    books and a customer's statement read the live ledger's lines up to the moment instead,
    once it has passed it: the same answer, decision 0019.)"""
    path = REPORTS[report]
    if "{customer}" in path:
        if not customer:
            raise click.UsageError("customer-statement needs --customer ID")
        path = path.format(customer=customer)
    params: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise click.UsageError(f"options are KEY=VALUE, not {option!r}")
        params[key] = value
    params["as_of"] = moment
    services = open_services(database_url)
    try:
        status, body = ask(services, path, params)
    finally:
        services.close()
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    if status != 200:
        raise click.exceptions.Exit(1)


def ask(services: Services, path: str, params: dict[str, str]) -> tuple[int, Any]:
    """GET one of the API's own routes in this process, as an auditor, without a server."""
    import httpx

    from api.app import create_app
    from api.deps import authenticate
    from api.keys import Caller

    app = create_app(services, run_projections=False)
    app.dependency_overrides[authenticate] = lambda: Caller(
        f"cli:{getpass.getuser()}", frozenset({"auditor"})
    )

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tekil") as client:
            return await client.get(path, params=params)

    response = asyncio.run(get())
    return response.status_code, response.json()


# -- seal and verify ------------------------------------------------------------------------

# From this many events, `verify` uses a second process (below, starting one costs more than
# it saves).
PARALLEL_FROM = 20_000


@audit.command("seal")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--every", default=CHECKPOINT_EVERY, show_default=True, help="events per checkpoint")
@db_option
def audit_seal(out: Path, every: int, database_url: str) -> None:
    """Extend the hash chain to the head of the log and write its checkpoints to OUT: keep
    that file away from the database, and verify against it later."""
    services = open_services(database_url)
    try:
        sealed = seal(services.business, services.chain, every=every)
    finally:
        services.close()
    sealed.write(out)
    click.echo(
        f"sealed {sealed.count} events up to position {sealed.head_position}: "
        f"head link {sealed.head_link[:16]}…, {len(sealed.checkpoints)} checkpoints in {out}"
    )


@audit.command("verify")
@click.option(
    "--against",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a seal file written by `tekil audit seal`",
)
@click.option(
    "--read-models/--no-read-models",
    default=True,
    show_default=True,
    help="compare every read model with a fresh rebuild",
)
@click.option(
    "--reconcile/--no-reconcile",
    default=True,
    show_default=True,
    help="check that the read models agree with the ledger",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 2),
    default=None,
    help="processes: 2 checks the hash chain (and the audit trail) in a second process "
    f"while this one rebuilds the other read models; default 2 from {PARALLEL_FROM:,} "
    "events on a machine with several cores, else 1",
)
@db_option
@click.pass_context
def audit_verify(
    ctx: click.Context,
    against: Path | None,
    read_models: bool,
    reconcile: bool,
    jobs: int | None,
    database_url: str,
) -> None:
    """Prove the store intact (hash chain, and the seal file if given), every read model
    equal to a fresh rebuild, and the reconciliation. Exit code 1 when anything fails."""
    from projections.reconciliation import READ_MODELS, positions
    from projections.reconciliation import reconcile as run_reconciliation
    from replay.verify import verify_everything

    services = open_services(database_url)
    failed = False
    began = time.monotonic()
    try:
        sealed = Seal.load(against) if against else None
        head = services.business.recorder.max_notification_id() or 0
        if jobs is None:
            jobs = 2 if head >= PARALLEL_FROM and (os.cpu_count() or 1) > 1 else 1
        store, models = verify_everything(
            services.business,
            services.reads,
            services.chain,
            services.settings,
            sealed,
            read_models=read_models,
            jobs=jobs,
        )
        findings, covered = store.findings, store.covered
        took = f"({store.seconds:.1f} s)"
        for finding in findings:
            click.echo(f"FAIL store: {finding}")
        failed |= bool(findings)
        if findings:
            click.echo(f"FAIL store: {len(findings)} findings {took}")
        elif covered:
            click.echo(
                f"ok   store: {covered} sealed events intact"
                + (f", and the seal file {against} agrees" if against else "")
                + f" {took}"
            )
        else:
            click.echo(f"ok   store: nothing sealed yet (run `tekil audit seal --out FILE`) {took}")
        if head and covered < head and not findings:
            click.echo(f"     store: events after the last seal are not covered yet (head {head})")
        if models is not None:
            differences, at = models.differences, models.positions
            took = f"({models.seconds:.1f} s)"
            for difference in differences:
                click.echo(f"FAIL read model {difference}")
            failed |= bool(differences)
            if differences:
                click.echo(f"FAIL read models: {len(differences)} differences {took}")
            else:
                click.echo(
                    f"ok   read models: {len(at)} equal a fresh rebuild "
                    f"(at positions {min(at.values(), default=0)}-"
                    f"{max(at.values(), default=0)}) {took}"
                )
        if reconcile:
            part = time.monotonic()
            catch_up(services)
            models = {n: services.reads[n] for n in READ_MODELS if n in services.reads.projections}
            with services.reads.reader.connect() as conn:
                report = run_reconciliation(
                    conn, models, services.business.chart, positions(conn, models)
                )
            for check in report["checks"]:
                if not check["ok"]:
                    click.echo(
                        f"FAIL reconciliation {check['name']}: {check['read_model']} "
                        f"{check['read_model_amount']} vs {check['ledger']} "
                        f"{check['ledger_amount']}"
                    )
            failed |= not report["ok"]
            took = f"({time.monotonic() - part:.1f} s)"
            if report["ok"]:
                click.echo(f"ok   reconciliation: {len(report['checks'])} checks agree {took}")
            else:
                click.echo(f"FAIL reconciliation: the read models disagree with the ledger {took}")
    finally:
        services.close()
    click.echo(
        f"{'verification FAILED' if failed else 'verified'} in {time.monotonic() - began:.1f} s"
    )
    ctx.exit(1 if failed else 0)


# -- export and import ----------------------------------------------------------------------


@audit.command("export")
@click.option("--from", "since", type=click.DateTime(), help="recorded at or after this")
@click.option("--to", "until", type=click.DateTime(), help="recorded at or before this")
@db_option
def audit_export(since: datetime | None, until: datetime | None, database_url: str) -> None:
    """Write the events as JSON lines to standard output (times in UTC)."""
    services = open_services(database_url)
    try:
        count = write_export(
            services.business,
            sys.stdout,
            since=since.replace(tzinfo=UTC) if since else None,
            until=until.replace(tzinfo=UTC) if until else None,
        )
    finally:
        services.close()
    click.echo(f"exported {count} events", err=True)


@audit.command("import")
@click.argument("source", type=click.File("r", encoding="utf8"))
@db_option
def audit_import(source: Any, database_url: str) -> None:
    """Load exported events into a new database (no `db init` first: this creates the tables),
    then bring every read model up to date."""
    services = open_services(database_url, initialise=True, defaults=False)
    try:
        count = import_lines(services.business, source)
        catch_up(services)
    except ImportRefused as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.close()
    click.echo(f"imported {count} events")


# -- history and trail ----------------------------------------------------------------------


def _table(rows: list[dict[str, Any]], data: bool) -> None:
    for row in rows:
        when = row["recorded_at"][:19].replace("T", " ")
        click.echo(
            f"{row['position']:>8}  {when}  {row['actor']:<18.18}  {row['event']:<28}  "
            f"v{row['version']:<3} cause {row['causation_id'][:36]}"
        )
        if data and row.get("data"):
            summary = ", ".join(f"{k}={_short(v)}" for k, v in row["data"].items())
            click.echo(f"{'':>10}{summary}")
        for other in row.get("recorded_with", []):
            click.echo(f"{'':>10}with {other['position']} {other['event']} {other['aggregate_id']}")


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def _audit_reader(services: Services) -> Any:
    catch_up(services)
    return services.reads.reader.connect()


@audit.command("history")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@db_option
def audit_history(key: str, as_json: bool, database_url: str) -> None:
    """Every event of one document, found by its id, document number, e-mail or SKU: when,
    who, what, with which data, and what else the same command recorded."""
    from domain.errors import NotFound
    from replay.history import history

    services = open_services(database_url)
    try:
        with _audit_reader(services) as conn:
            try:
                found = history(services.business, conn, services.reads["audit"], key)
            except NotFound as error:
                raise click.ClickException(error.detail) from None
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for aggregate in found["aggregates"]:
        click.echo(f"{aggregate['id']}  (found by {aggregate['found_by']})")
    click.echo(
        f"{'position':>8}  {'recorded (UTC)':<19}  {'actor':<18}  {'event':<28}  version, causation"
    )
    _table(found["events"], data=True)
    if found["referenced_by"]:
        click.echo("referenced by:")
        _table(found["referenced_by"], data=False)


@audit.command("trail")
@click.option("--actor")
@click.option("--from", "since", type=click.DateTime(), help="recorded at or after (UTC)")
@click.option("--to", "until", type=click.DateTime(), help="recorded at or before (UTC)")
@click.option("--type", "event_type", help="Invoice.Issued, or Issued for every kind")
@click.option("--limit", default=100, show_default=True)
@click.option("--offset", default=0)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@db_option
def audit_trail(
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    event_type: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    database_url: str,
) -> None:
    """Who did what, when, across the whole business."""
    from replay.history import trail

    services = open_services(database_url)
    try:
        with _audit_reader(services) as conn:
            found = trail(
                conn,
                services.reads["audit"],
                actor=actor,
                since=since.replace(tzinfo=UTC) if since else None,
                until=until.replace(tzinfo=UTC) if until else None,
                event_type=event_type,
                limit=limit,
                offset=offset,
            )
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    _table(found["events"], data=False)
