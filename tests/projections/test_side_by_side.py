"""A side-by-side rebuild fills new tables while the live ones keep serving and being fed,
then takes their place in one transaction; the live runner carries on with the new tables."""

from __future__ import annotations

import threading

from click.testing import CliRunner

from api.services import Services
from projections.runner import Progress
from projections.sidebyside import rebuild_beside
from replay.cli import main
from replay.verify import compare_read_models
from tests.api.test_order_to_cash import Books
from tests.conftest import Api


def test_queries_keep_their_answers_while_a_new_build_is_made_and_swapped_in(
    api: Api, services: Services
) -> None:
    books = Books(api)
    books.product(price=100)
    for cost in range(60, 70):
        books.receive((1, cost))
    before = api.ok("get", "/api/reports/stock")
    seen_during: list[dict] = []

    def during(progress: Progress) -> None:
        # While the new build runs, the live tables still answer in full.
        if not seen_during:
            seen_during.append(api.ok("get", "/api/reports/stock"))

    done = rebuild_beside(
        services.business,
        services.settings.reads_url,
        services.reads["stock"],
        batch_size=3,
        on_progress=during,
    )
    assert done > 0
    assert seen_during == [before]
    assert api.ok("get", "/api/reports/stock") == before

    # The live runner goes on feeding the swapped-in tables.
    books.receive((5, 80))
    after = api.ok("get", "/api/reports/stock")
    assert after["items"][0]["on_hand"] == "15"
    differences, _ = compare_read_models(services.business, services.reads)
    assert differences == []


def test_commands_recorded_during_the_build_are_in_the_swapped_in_tables(
    api: Api, services: Services
) -> None:
    books = Books(api)
    books.product(price=100)
    books.receive((10, 60))
    writing = threading.Event()

    def write_while_building(progress: Progress) -> None:
        if not writing.is_set():
            writing.set()
            books.receive((2, 70))

    rebuild_beside(
        services.business,
        services.settings.reads_url,
        services.reads["stock"],
        batch_size=1,
        on_progress=write_while_building,
    )
    stock = api.ok("get", "/api/reports/stock")
    assert (stock["items"][0]["on_hand"], stock["totals"]["value"]) == ("12", "740.00")
    differences, _ = compare_read_models(services.business, services.reads)
    assert differences == []


def test_the_command_line_rebuilds_side_by_side_with_progress(api: Api, database_url: str) -> None:
    Books(api).product(price=100)
    result = CliRunner().invoke(
        main, ["projections", "rebuild", "products", "--side-by-side", "--db", database_url]
    )
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    assert "swapped it in" in result.output
