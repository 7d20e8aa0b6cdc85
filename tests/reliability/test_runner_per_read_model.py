"""On PostgreSQL a deployment may run one projection runner per read model (or per group of
them), each `tekil projections run NAME...` a process of its own following the store: each
moves only its own read models, and together they leave exactly the rows one runner gives."""

from __future__ import annotations

from pathlib import Path

from api.services import Services
from domain.settings import Settings
from tests.conftest import read_model_rows
from tests.reliability.conftest import rows_of_one_runner, start_tekil, stop, wait_until
from tests.reliability.test_crash_recovery import business_history

FIRST = ("ledger", "stock", "audit")


def test_runners_of_their_own_read_models_together_give_what_one_runner_gives(
    postgresql_url: str, app_name: str, tmp_path: Path
) -> None:
    services = Services.open(Settings(database_url=postgresql_url), initialise=True)
    try:
        business_history(services.business, 20)
        head = services.business.recorder.max_notification_id() or 0
        log = tmp_path / "run.log"

        def positions() -> dict[str, int]:
            return services.reads.positions()

        first = start_tekil("projections", "run", *FIRST, "--db", postgresql_url, log=log)
        try:
            wait_until(
                lambda: all(positions()[n] >= head for n in FIRST),
                60,
                lambda: f"{', '.join(FIRST)} to reach {head}: {positions()}; {log.read_text()}",
            )
            assert {n: p for n, p in positions().items() if n not in FIRST} == {
                n: 0 for n in services.reads.projections if n not in FIRST
            }
            others = [n for n in services.reads.projections if n not in FIRST]
            second = start_tekil("projections", "run", *others, "--db", postgresql_url, log=log)
            try:
                wait_until(
                    lambda: min(positions().values()) >= head,
                    60,
                    lambda: f"every read model to reach {head}: {positions()}; {log.read_text()}",
                )
            finally:
                stop(second)
        finally:
            stop(first)
        together = read_model_rows(services)
    finally:
        services.close()

    _, alone = rows_of_one_runner(postgresql_url)
    assert sum(len(rows) for rows in alone.values()) > head / 2
    assert together == alone


def test_an_unknown_read_model_is_refused_with_the_known_ones(
    postgresql_url: str, app_name: str, tmp_path: Path
) -> None:
    Services.open(Settings(database_url=postgresql_url), initialise=True).close()
    log = tmp_path / "run.log"

    runner = start_tekil("projections", "run", "ledgr", "--db", postgresql_url, log=log)
    assert runner.wait(timeout=30) == 2
    said = log.read_text()
    assert "unknown read model 'ledgr'" in said
    assert "ledger" in said
