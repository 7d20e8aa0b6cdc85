"""`tekil bench` end to end on SQLite with tiny counts and a tiny history: every section of
BENCHMARKS.md is written, with its figures, its reference and its target, and the JSON holds
every part. No figure is judged here: timings belong to BENCHMARKS.md, not to tests."""

from __future__ import annotations

import json

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


def test_the_json_holds_each_part_at_each_history_size(ran: tuple[str, dict, str]) -> None:
    _, results, _ = ran
    assert results["sizes"] == [600, 1200]
    assert set(results["throughput"]["sqlite"]["commands"]) >= {"create_quote", "receive_payment"}
    assert results["http"]["sqlite"]["clients"]["ok"]
    per_size = results["history"]["sqlite"]
    assert len(per_size) == 2
    for got in per_size.values():
        assert got["rebuild"]["identical_to_live"]
        assert got["invoice"]["invoices"] > 0
        assert len(got["reports"]["reports"]) == 7
        assert all(r["agree"] for r in got["reports"]["reports"].values())
    largest = per_size["1200"]["reports"]["reports"]
    assert all("http" in r for r in largest.values())
    assert results["peer"]["ratios"]["stored"]["application:sqlite"]["tryton_cycles_per_s"] == 0.9
