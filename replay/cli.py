"""`tekil`: serve the API, manage the database, keys and read models, audit and replay."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from api.keys import ROLES, InvalidKeyRequest
from bench.cli import bench
from domain.settings import Settings
from replay.audit_cli import audit
from replay.common import catch_up, db_option, open_services


@click.group()
@click.version_option(package_name="tekil")
def main() -> None:
    """tekil: one event-sourced store for the whole business, CRM and ERP."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


# -- db -------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database: create the store and read-model tables."""


@db.command("init")
@db_option
def db_init(database_url: str) -> None:
    """Create the store, read-model and key tables (once; safe to repeat)."""
    services = open_services(database_url, initialise=True)
    services.close()
    click.echo(f"initialised {database_url}")


# -- serve ----------------------------------------------------------------------------------


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--demo",
    is_flag=True,
    help="load the demo data (idempotent: a generated year, then a named story) and print an "
    "admin key",
)
@click.option(
    "--projections/--no-projections",
    default=True,
    show_default=True,
    help="feed the read models in this process (turn off when `tekil projections run` does)",
)
@click.option(
    "--jobs/--no-jobs",
    default=True,
    show_default=True,
    help="run the scheduled business jobs daily and once at start-up (quote expiry, overdue "
    "invoices); safe in several processes, as each job records once",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes (PostgreSQL only); with more than one, the read models are fed by a "
    "`tekil projections run` process this command starts beside them",
)
def serve(
    database_url: str,
    host: str,
    port: int,
    demo: bool,
    projections: bool,
    jobs: bool,
    workers: int,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from api.app import create_app

    settings = Settings.from_env(database_url=database_url)
    # With --demo, the MAIN warehouse is opened on the generated year's first day.
    services = open_services(
        database_url, initialise=settings.backend == "sqlite", defaults=not demo
    )
    if demo:
        from replay.demo import load_demo
        from replay.demo_history import load_demo_history

        generated = load_demo_history(services)
        if generated:
            click.echo(f"demo data: a generated year of business, {generated:,} events")
        fresh = load_demo(services.business)
        key = services.keys.create("demo-admin", ["admin"], replace=True)
        click.echo(
            f"demo data: {fresh} new commands recorded ({'loaded' if fresh else 'already there'})"
        )
        click.echo(f"admin API key (name demo-admin): {key}")
        click.echo(
            f"try: curl -H 'Authorization: Bearer {key}' http://{host}:{port}/api/reports/pipeline"
        )
    if workers > 1:
        services.close()
        _serve_workers(settings, host, port, workers, projections=projections, jobs=jobs)
        return
    app = create_app(services, run_projections=projections, run_jobs=jobs)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        services.close()


def _serve_workers(
    settings: Settings, host: str, port: int, workers: int, *, projections: bool, jobs: bool
) -> None:
    """uvicorn's worker processes, each opening the store itself (api.app:app_from_env), and
    one projection runner process beside them."""
    import subprocess

    import uvicorn

    if settings.backend != "postgresql":
        raise click.UsageError(
            "the embedded SQLite store is written by one process: --workers needs PostgreSQL"
        )
    os.environ["TEKIL_DATABASE_URL"] = settings.database_url
    if settings.read_database_url:
        os.environ["TEKIL_READ_DATABASE_URL"] = settings.read_database_url
    os.environ["TEKIL_SERVE_PROJECTIONS"] = "0"
    os.environ["TEKIL_SERVE_JOBS"] = "1" if jobs else "0"
    runner = (
        subprocess.Popen([sys.executable, "-m", "replay.cli", "projections", "run"])
        if projections
        else None
    )
    try:
        uvicorn.run(
            "api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
    finally:
        if runner is not None:
            runner.terminate()
            runner.wait(30)


# -- demo -----------------------------------------------------------------------------------


@main.command()
@click.option(
    "--events",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=100),
    help="about how many events to record",
)
@click.option("--seed", default=1, show_default=True, help="the same seed, the same history")
@db_option
def demo(events: int, seed: int, database_url: str) -> None:
    """Fill a new database with a year of a trading company's business, generated and recorded
    through the application's own commands: leads, customers, quotes, orders, shipments,
    invoices, payments, stock receipts. Run it while no server writes to the database."""
    from eventsourcing.persistence import IntegrityError

    from replay.batched import AnotherWriter
    from replay.demo_history import HasHistory, record_history

    settings = Settings.from_env(database_url=database_url)
    services = open_services(database_url, initialise=settings.backend == "sqlite", defaults=False)
    try:
        recorded = record_history(
            services,
            events,
            seed=seed,
            on_progress=_progress_printer("generating"),
            on_read_models=_progress_printer("read models"),
        )
    except HasHistory as error:
        raise click.ClickException(f"{error}: tekil demo fills a new database") from None
    except (AnotherWriter, IntegrityError) as error:
        raise click.ClickException(
            f"another process wrote to the store ({error}): run tekil demo on a new database "
            "while no server writes to it"
        ) from None
    finally:
        services.close()
    click.echo("", err=True)
    click.echo(
        f"recorded {recorded.events:,} events, {recorded.first_day} to {recorded.last_day}, "
        f"in {recorded.seconds:,.0f} s ({recorded.events / recorded.seconds:,.0f} events/s; "
        f"read models {recorded.read_models_seconds:,.0f} s of it)"
    )


# -- keys -----------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys: each has a name (the actor on its events) and roles."""


@keys.command("create")
@click.option("--name", required=True)
@click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice(ROLES),
    help="repeat for several roles",
)
@db_option
def keys_create(name: str, roles: tuple[str, ...], database_url: str) -> None:
    """Create a key; it is printed once, alone on the last line."""
    services = open_services(database_url)
    try:
        key = services.keys.create(name, list(roles))
    except InvalidKeyRequest as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.close()
    click.echo(f"created key {name!r} with roles {', '.join(roles)}; it is shown only now:")
    click.echo(key)


@keys.command("revoke")
@click.argument("name")
@db_option
def keys_revoke(name: str, database_url: str) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    services = open_services(database_url)
    try:
        done = services.keys.revoke(name)
    finally:
        services.close()
    if not done:
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


@keys.command("list")
@db_option
def keys_list(database_url: str) -> None:
    """List keys (names, roles, when created and revoked; never the keys)."""
    services = open_services(database_url)
    try:
        for key in services.keys.list():
            state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "active"
            click.echo(f"{key['name']:<24} {key['roles']:<30} {state}")
    finally:
        services.close()


# -- projections ----------------------------------------------------------------------------


@main.group()
def projections() -> None:
    """Read models: status, rebuild, the runner process, and pruning older versions."""


@projections.command("status")
@db_option
def projections_status(database_url: str) -> None:
    """Each read model's position and lag behind the store."""
    services = open_services(database_url)
    try:
        head = services.business.recorder.max_notification_id() or 0
        click.echo(f"{'projection':<20} {'version':>7} {'position':>10} {'lag':>8}   (head {head})")
        for name, position in services.reads.positions().items():
            version = services.reads[name].version
            click.echo(f"{name:<20} {version:>7} {position:>10} {head - position:>8}")
    finally:
        services.close()


def _progress_printer(label: str) -> Callable[[Any], None]:
    def show(p: Any) -> None:
        rate = p.events / p.seconds if p.seconds > 0 else 0.0
        left = (p.head - p.position) / rate if rate else 0.0
        done = p.position / p.head if p.head else 1.0
        bar = "#" * int(done * 30)
        click.echo(
            f"\r{label:<16} [{bar:<30}] {p.position}/{p.head}  {rate:,.0f} events/s  "
            f"{left:,.1f} s left ",
            nl=False,
            err=True,
        )

    return show


@projections.command("rebuild")
@click.argument("name", required=False)
@click.option("--all", "rebuild_all", is_flag=True, help="rebuild every read model")
@click.option(
    "--side-by-side",
    is_flag=True,
    help="build into new tables while the old ones keep serving; swap when caught up",
)
@click.option(
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="with --all, 2 rebuilds some read models (the audit trail, ...) in a second process",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="events per transaction of a plain rebuild (default 20000; less holds less memory)",
)
@db_option
def projections_rebuild(
    name: str | None,
    rebuild_all: bool,
    side_by_side: bool,
    jobs: int,
    batch_size: int | None,
    database_url: str,
) -> None:
    """Rebuild a read model (or --all) from position 0 in batches. Plain: its tables are
    dropped first. --side-by-side: queries keep the old tables until the new build takes over."""
    from projections.runner import REBUILD_BATCH, rebuild
    from projections.sidebyside import TakeOverFailed, rebuild_beside

    services = open_services(database_url)
    try:
        known = list(services.reads.projections)
        if rebuild_all == bool(name):
            raise click.UsageError(f"name one read model ({', '.join(known)}) or pass --all")
        if name and name not in known:
            raise click.UsageError(f"unknown read model {name!r}; known: {', '.join(known)}")
        chosen = [services.reads[n] for n in (known if rebuild_all else [str(name)])]
        if side_by_side:
            for projection in chosen:
                try:
                    done = rebuild_beside(
                        services.business,
                        services.settings.reads_url,
                        projection,
                        on_progress=_progress_printer(projection.name),
                    )
                except TakeOverFailed as error:
                    raise click.ClickException(str(error)) from None
                click.echo("", err=True)
                click.echo(
                    f"rebuilt {projection.name} beside the live one ({done} positions) "
                    "and swapped it in"
                )
            return
        label = "all" if rebuild_all else str(name)
        events = rebuild(
            services.business,
            services.reads,
            chosen,
            on_progress=_progress_printer(label),
            jobs=jobs,
            store_url=services.settings.database_url,
            batch_size=batch_size or REBUILD_BATCH,
        )
        click.echo("", err=True)
        click.echo(f"rebuilt {', '.join(p.name for p in chosen)} from {events} events")
    finally:
        services.close()


@projections.command("prune")
@click.option("--yes", is_flag=True, help="drop them; without it, only list them")
@db_option
def projections_prune(yes: bool, database_url: str) -> None:
    """Drop the tables of read-model versions this code no longer defines, which an upgrade
    leaves behind (each version is built into tables of its own). Run it once no server of
    the older code reads them; without --yes, only list them."""
    services = open_services(database_url)
    try:
        reads = services.reads
        found = reads.drop_older_versions() if yes else reads.older_versions()
        for name, tables in found.items():
            click.echo(f"{name} (now version {reads[name].version}): {', '.join(tables)}")
        count = sum(len(tables) for tables in found.values())
        if not count:
            click.echo("no tables of other versions")
        elif yes:
            click.echo(f"dropped {count} tables of other versions")
        else:
            click.echo(f"{count} tables of other versions; pass --yes to drop them")
    finally:
        services.close()


@projections.command("run")
@click.argument("names", nargs=-1)
@db_option
def projections_run(names: tuple[str, ...], database_url: str) -> None:
    """Feed the read models (or only those NAMES) as a process of its own (for PostgreSQL
    deployments, with `tekil serve --no-projections`): one process for all of them, or one
    per read model, each following the store on its own. Stops on SIGINT or SIGTERM."""
    from projections.runner import Runner

    services = open_services(database_url)
    try:
        unknown = [n for n in names if n not in services.reads.projections]
        if unknown:
            known = ", ".join(services.reads.projections)
            raise click.UsageError(f"unknown read model {unknown[0]!r}; known: {known}")
        runner = services.runner
        if names:
            chosen = [services.reads[n] for n in dict.fromkeys(names)]
            runner = Runner(
                services.business, services.reads, chosen, store_url=services.settings.database_url
            )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        runner.start()
        following = ", ".join(p.name for p in runner.projections)
        click.echo(f"projection runner started ({following}); Ctrl-C to stop")
        try:
            stop.wait()
        finally:
            runner.stop()
    finally:
        services.close()
    click.echo("projection runner stopped")


# -- jobs -----------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """Scheduled business jobs (`tekil serve` runs them daily)."""


@jobs.command("run")
@click.argument("name", type=click.Choice(["expire-quotes", "mark-overdue"]))
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="the business date the job covers (default: today where the business is)",
)
@db_option
def jobs_run(name: str, day: Any, database_url: str) -> None:
    """Run one job now. Safe to repeat: a job records each change once per day it covers."""
    from api.jobs import run_job

    services = open_services(database_url)
    try:
        catch_up(services)
        run = run_job(services, name, day.date() if day is not None else None)
    finally:
        services.close()
    click.echo(run.summary())
    for document, error in run.failed.items():
        click.echo(f"failed {document}: {error}", err=True)


main.add_command(audit)
main.add_command(bench)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
