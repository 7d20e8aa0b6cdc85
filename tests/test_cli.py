"""The `tekil` command line against an SQLite file and a PostgreSQL schema: set up the
database, hand out and revoke API keys, watch and rebuild the read models; and the demo data,
which can be loaded again without recording anything twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from click.testing import CliRunner, Result

from api.services import Services
from domain import context
from domain.context import CommandContext
from domain.settings import Settings
from replay.cli import main
from replay.demo import load_demo
from tests.conftest import event_count, read_model_rows

Rows = dict[str, list[tuple[object, ...]]]

DEMO_DAY = date(2026, 11, 27)


def tekil(*args: str, database_url: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", database_url], catch_exceptions=False)


@contextmanager
def opened(database_url: str) -> Iterator[Services]:
    services = Services.open(Settings(database_url=database_url))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture(scope="module")
def demo_commands(shared_database_url: str) -> int:
    """One initialised store per backend for the module, with the demo data loaded once;
    returns how many demo commands recorded something."""
    assert tekil("db", "init", database_url=shared_database_url).exit_code == 0
    with opened(shared_database_url) as services:
        return load_demo(services.business, today=DEMO_DAY)


@pytest.fixture
def initialised(shared_database_url: str, demo_commands: int) -> str:
    return shared_database_url


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


# -- db init ---------------------------------------------------------------------------------


def test_db_init_creates_the_store_read_models_and_keys_and_may_be_repeated(
    database_url: str,
) -> None:
    first = tekil("db", "init", database_url=database_url)
    key = tekil("keys", "create", "--name", "ayse", "--role", "sales", database_url=database_url)
    with opened(database_url) as services:
        load_demo(services.business, today=DEMO_DAY)
        head = event_count(services)

    again = tekil("db", "init", database_url=database_url)

    assert first.exit_code == again.exit_code == 0
    assert first.stdout == again.stdout == f"initialised {database_url}\n"
    with opened(database_url) as services:
        assert event_count(services) == head
        assert services.keys.authenticate(key.stdout.splitlines()[-1]) is not None
        assert set(services.reads.positions().values()) == {0}


def test_a_command_on_a_database_never_initialised_says_how_to_initialise_it(
    database_url: str,
) -> None:
    result = CliRunner().invoke(main, ["projections", "status", "--db", database_url])

    assert result.exit_code == 1
    assert "the database is not initialised" in result.output
    assert f"run: tekil db init --db {database_url}" in result.output


# -- keys ------------------------------------------------------------------------------------


def test_a_created_key_is_printed_alone_on_the_last_line_and_authenticates(
    initialised: str,
) -> None:
    name = unique("ayse")

    result = tekil(
        "keys", "create", "--name", name, "--role", "sales", "--role", "manager",
        database_url=initialised,
    )  # fmt: skip

    assert result.exit_code == 0
    *before, key = result.stdout.splitlines()
    assert before == [f"created key '{name}' with roles sales, manager; it is shown only now:"]
    assert key.startswith("tk_")
    assert " " not in key
    with opened(initialised) as services:
        caller = services.keys.authenticate(key)
    assert caller is not None
    assert caller.name == name
    assert caller.roles == frozenset({"sales", "manager"})


def test_a_revoked_key_no_longer_authenticates(initialised: str) -> None:
    name = unique("leaver")
    key = tekil("keys", "create", "--name", name, "--role", "sales", database_url=initialised)
    key = key.stdout.splitlines()[-1]

    revoked = tekil("keys", "revoke", name, database_url=initialised)

    assert revoked.exit_code == 0
    assert revoked.stdout == f"revoked '{name}'\n"
    with opened(initialised) as services:
        assert services.keys.authenticate(key) is None
    listed = [line for line in tekil("keys", "list", database_url=initialised).stdout.splitlines()
              if line.startswith(f"{name} ")]  # fmt: skip
    assert len(listed) == 1
    assert " revoked " in listed[0]


def test_revoking_an_unknown_or_revoked_key_fails(initialised: str) -> None:
    name = unique("leaver")
    tekil("keys", "create", "--name", name, "--role", "sales", database_url=initialised)
    tekil("keys", "revoke", name, database_url=initialised)
    runner = CliRunner()

    twice = runner.invoke(main, ["keys", "revoke", name, "--db", initialised])
    unknown = runner.invoke(main, ["keys", "revoke", "nobody", "--db", initialised])

    assert (twice.exit_code, unknown.exit_code) == (1, 1)
    assert f"no active key named '{name}'" in twice.output
    assert "no active key named 'nobody'" in unknown.output


def test_a_second_key_of_the_same_name_or_an_unknown_role_is_refused(initialised: str) -> None:
    name = unique("ayse")
    tekil("keys", "create", "--name", name, "--role", "sales", database_url=initialised)
    runner = CliRunner()

    same_name = runner.invoke(
        main, ["keys", "create", "--name", name, "--role", "admin", "--db", initialised]
    )
    bad_role = runner.invoke(
        main, ["keys", "create", "--name", "can", "--role", "boss", "--db", initialised]
    )

    assert same_name.exit_code == 1
    assert f"a key named '{name}' exists; revoke it first" in same_name.output
    assert bad_role.exit_code == 2
    assert "'boss' is not one of" in bad_role.output


# -- projections -----------------------------------------------------------------------------


def test_projections_status_shows_each_read_model_with_its_position_and_lag(
    initialised: str,
) -> None:
    with opened(initialised) as services:
        with context.acting(CommandContext(actor="ayse")):
            services.business.capture_lead(name="Not yet in the read models")
        head = event_count(services)
        positions = services.reads.positions()
        versions = {name: p.version for name, p in services.reads.projections.items()}

    result = tekil("projections", "status", database_url=initialised)

    assert result.exit_code == 0
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["projection", "version", "position", "lag", "(head", f"{head})"]
    assert [line.split() for line in lines] == [
        [name, str(versions[name]), str(position), str(head - position)]
        for name, position in positions.items()
    ]
    assert head - positions["leads"] > 0


def caught_up_rows(database_url: str) -> Rows:
    """The read models' rows once the live runner has taken in every event."""
    with opened(database_url) as services:
        services.runner.catch_up()
        rows = read_model_rows(services)
    assert len(rows["leads.leads"]) >= 7
    return rows


@pytest.mark.parametrize("options", [(), ("--batch-size", "4")])
def test_rebuilding_every_read_model_reproduces_the_same_rows(
    initialised: str, options: tuple[str, ...]
) -> None:
    live = caught_up_rows(initialised)

    result = tekil("projections", "rebuild", "--all", *options, database_url=initialised)

    assert result.exit_code == 0
    with opened(initialised) as services:
        head = event_count(services)
        assert read_model_rows(services) == live
        assert set(services.reads.positions().values()) == {head}
        names = ", ".join(services.reads.projections)
    assert result.stdout.splitlines()[-1] == f"rebuilt {names} from {head} events"


def test_rebuilding_one_read_model_reproduces_the_same_rows(initialised: str) -> None:
    live = caught_up_rows(initialised)

    result = tekil("projections", "rebuild", "leads", database_url=initialised)

    assert result.exit_code == 0
    with opened(initialised) as services:
        assert read_model_rows(services) == live
    assert result.stdout.splitlines()[-1].startswith("rebuilt leads from ")


def test_rebuilding_without_naming_one_known_read_model_is_a_usage_error(
    initialised: str,
) -> None:
    runner = CliRunner()

    def rebuild(*args: str) -> Result:
        return runner.invoke(main, ["projections", "rebuild", *args, "--db", initialised])

    unknown, unnamed, both = rebuild("nonsense"), rebuild(), rebuild("leads", "--all")

    for result in (unknown, unnamed, both):
        assert result.exit_code == 2, result.output
        assert "Usage: " in result.output
    assert "unknown read model 'nonsense'; known: leads, customers," in unknown.output
    assert "name one read model (leads, customers," in unnamed.output
    assert "name one read model (leads, customers," in both.output


# -- demo data -------------------------------------------------------------------------------


def test_loading_the_demo_data_twice_records_nothing_the_second_time(
    initialised: str, demo_commands: int
) -> None:
    with opened(initialised) as services:
        head = event_count(services)

        again = load_demo(services.business, today=DEMO_DAY)
        on_another_day = load_demo(services.business, today=date(2027, 3, 1))

        assert event_count(services) == head
    assert demo_commands > 20
    assert again == on_another_day == 0
