"""`tekil bench` end to end on SQLite with tiny counts and a tiny history: every section of
BENCHMARKS.md is written, with its figures, its reference and its target, and the JSON holds
every part. No figure is judged here: timings belong to BENCHMARKS.md, not to tests."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from replay.cli import main

SECTIONS = (
    "## Machine",
    "## Summary",
    "## 1. Command throughput through the Application",
    "## 2. The order-to-cash cycle over HTTP",
    "## 3. The cost of a write against history",
    "## 4. Report latency against history",
    "## 5. Rebuilding every read model",
    "## 6. The peer: Tryton",
)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    where = tmp_path_factory.mktemp("bench")
    peer = where / "peer"
    peer.mkdir()
    (peer / "results_sqlite.json").write_text(
        json.dumps(
            {
                "trytond": "8.2.1",
                "runs": [
                    {"mode": "server", "n": 5, "cycles_per_s": 0.9, "ms_per_cycle": 1111},
                    {"mode": "proteus", "n": 5, "cycles_per_s": 0.6, "ms_per_cycle": 1666},
                ],
            }
        )
    )
    out, data = where / "BENCHMARKS.md", where / "bench.json"
    args = ["bench", "--size", "1200", "--quick", "--backend", "sqlite"]
    args += ["--cache", str(where / "cache"), "--peer-results", str(peer)]
    args += ["--out", str(out), "--json", str(data)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return out.read_text(), json.loads(data.read_text()), result.output


def test_every_section_is_written_with_its_figures(ran: tuple[str, dict, str]) -> None:
    markdown, results, output = ran
    assert results["errors"] == {}, output
    positions = [markdown.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    for reference in ("raw INSERT, one row per transaction", "CRUD", "Tryton"):
        assert reference in markdown
    assert "n/a" in markdown  # no 1M-event rebuild in a test: said so, not guessed
    assert re.search(r"What bounds it: at [\d,]+ events the rows the rebuild leaves", markdown)


def test_the_json_holds_each_part_at_each_history_size(ran: tuple[str, dict, str]) -> None:
    _, results, _ = ran
    assert results["sizes"] == [600, 1200]
    assert set(results["throughput"]["sqlite"]["commands"]) >= {"create_quote", "receive_payment"}
    assert results["http"]["sqlite"]["clients"]["ok"]
    per_size = results["history"]["sqlite"]
    assert len(per_size) == 2
    for got in per_size.values():
        assert got["rebuild"]["identical_to_live"]
        # The rows the rebuild left, written again alone: an audit row for every event, more.
        assert got["bounds"]["events"] == got["events"]
        assert got["bounds"]["rows"] > got["events"]
        assert got["bounds"]["write_events_per_s"] > 0
        assert got["bounds"]["read_rows_per_s"] > 0
        assert got["invoice"]["invoices"] > 0
        assert len(got["reports"]["reports"]) == 7
        assert all(r["agree"] for r in got["reports"]["reports"].values())
    largest = per_size["1200"]["reports"]["reports"]
    assert all("http" in r for r in largest.values())
    assert results["peer"]["ratios"]["stored"]["application:sqlite"]["tryton_cycles_per_s"] == 0.9


def _processes() -> list[tuple[int, int, str, str]]:
    """(pid, parent pid, state, command line) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        found.append((int(entry.name), int(parent), state, cmdline))
    return found


def test_a_run_stopped_by_sigterm_stops_the_server_it_started(tmp_path: Path) -> None:
    """`kill` (a CI timeout, an operator) stops `tekil bench` as Ctrl-C does: the `tekil
    serve` it started for the HTTP section does not outlive it."""
    args = [sys.executable, "-m", "replay.cli", "bench", "--size", "1200", "--quick"]
    args += ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "B.md")]
    run = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        servers: list[int] = []
        while not servers and run.poll() is None and time.monotonic() < deadline:
            servers = [
                p for p, parent, _, cmd in _processes() if parent == run.pid and " serve " in cmd
            ]
            time.sleep(0.05)
        assert servers, "the run started no server (or ended before it could be stopped)"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=90) != 0
        alive = [p for p, _, state, _ in _processes() if p in servers and state != "Z"]
        assert alive == [], "the server outlived the run"
    finally:
        if run.poll() is None:
            run.kill()
