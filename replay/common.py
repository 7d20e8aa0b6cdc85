"""What every `tekil` command shares: the --db option, opening the services, catching up."""

from __future__ import annotations

import click

from api.services import Services
from domain.settings import DEFAULT_DATABASE_URL, Settings

db_option = click.option(
    "--db",
    "database_url",
    envvar="TEKIL_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="sqlite:///path/file.db or postgresql://user@host:port/db (env TEKIL_DATABASE_URL)",
)


def open_services(
    database_url: str, *, initialise: bool = False, defaults: bool = True
) -> Services:
    settings = Settings.from_env(database_url=database_url)
    try:
        services = Services.open(settings, initialise=initialise, defaults=defaults)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if not initialise:
        check_initialised(services)
    return services


def check_initialised(services: Services) -> None:
    try:
        services.business.recorder.max_notification_id()
        services.reads.positions()
    except Exception as error:
        services.close()
        text = str(error)
        if "no such table" in text or "does not exist" in text:
            raise click.ClickException(
                f"the database is not initialised ({type(error).__name__}); run: tekil db init "
                f"--db {services.settings.database_url}"
            ) from None
        raise click.ClickException(
            f"cannot read the database {services.settings.database_url}: "
            f"{type(error).__name__}: {text.strip()}"
        ) from None


def catch_up(services: Services) -> None:
    """Bring the read models to the head of the store: in this process, or, when a runner
    elsewhere is writing the same batch at the same moment and wins, by waiting for it."""
    from sqlalchemy.exc import SQLAlchemyError

    head = services.business.recorder.max_notification_id() or 0
    try:
        services.runner.catch_up(stop=head)
    except SQLAlchemyError:
        if not services.reads.wait_for(head, list(services.reads.projections), timeout=30):
            raise
