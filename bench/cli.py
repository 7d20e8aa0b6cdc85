"""`tekil bench`: the command; what it runs is in bench/suite.py (imported when it runs, so
that other `tekil` commands do not pay for it)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from bench.harness import DEFAULT_PG_URL, ROOT

BACKENDS = {"sqlite": "sqlite", "postgres": "postgresql", "postgresql": "postgresql"}


@click.command()
@click.option(
    "--size",
    default="100k",
    show_default=True,
    help="the largest history measured: 10k, 100k or 1m (sections 3-5 run at each of these "
    "up to it, and at any other number of events given, e.g. 50k; one below 10k, for tests, "
    "with its half). Histories are generated once and cached; 1m takes 15-55 min to "
    "generate the first time",
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(sorted(BACKENDS)),
    help="repeat for both (default: sqlite)",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "BENCHMARKS.md",
    show_default=True,
)
@click.option(
    "--peer-results",
    type=click.Path(file_okay=False, path_type=Path),
    help="the Tryton peer's folder or its results folder (default: ../shared/peers/tryton)",
)
@click.option(
    "--peer-run",
    is_flag=True,
    help="also run the Tryton peer now (SQLite, a few minutes; its ./setup.sh first if needed)",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="where generated histories are kept (default: $TEKIL_BENCH_CACHE or "
    "/tmp/tekil-bench-cache)",
)
@click.option("--pg-url", default=DEFAULT_PG_URL, show_default=True)
@click.option("--quick", is_flag=True, hidden=True, help="tiny counts everywhere (tests)")
def bench(
    size: str,
    backends: tuple[str, ...],
    json_path: Path | None,
    out: Path,
    peer_results: Path | None,
    peer_run: bool,
    seed: int,
    cache: Path | None,
    pg_url: str,
    quick: bool,
) -> None:
    """Run the benchmarks of issue 6 and write BENCHMARKS.md: command throughput beside raw
    INSERTs, the order-to-cash cycle over HTTP, the cost of a write and of reports against
    history (beside a CRUD schema), the rebuild rate and memory, and Tryton as a peer."""
    from bench import history, peer, suite

    try:
        largest = suite.parse_size(size)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--size") from None
    chosen = list(dict.fromkeys(BACKENDS[b] for b in backends)) or ["sqlite"]
    runner = suite.Suite(
        size=largest,
        backends=chosen,
        plan=suite.QUICK if quick else suite.Plan(),
        seed=seed,
        cache_dir=cache or history.CACHE_DIR,
        pg_url=pg_url,
        peer_dir=peer_results or peer.DEFAULT_DIR,
        peer_run=peer_run,
    )
    stop_on_sigterm()
    results = runner.run()
    suite.write(results, out, json_path)
    click.echo(f"wrote {out}" + (f" and {json_path}" if json_path else ""))
    if results["errors"]:
        raise click.ClickException(f"{len(results['errors'])} part(s) failed: see {out}")


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a CI timeout) stops the run as Ctrl-C does: its `finally` blocks run,
    so that the servers it started are stopped and its PostgreSQL schemas dropped (else a
    `tekil serve` left behind, listening on the store's channel, slows every later run)."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
