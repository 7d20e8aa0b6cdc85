"""`tekil bench`: every benchmark of issue 6, each figure beside its reference measured in the
same run, written to BENCHMARKS.md (and, if asked, to a JSON file).

1. Command throughput through the Application, per command type and for the order-to-cash
   cycle, beside raw INSERTs (bench/cycle_throughput.py).
2. The cycle over HTTP through uvicorn (bench/load.py).
3. The cost of a write against history: issuing an invoice (bench/history.py).
4. Report latency, beside a CRUD schema's plain aggregation (bench/reports.py, bench/crud.py).
5. Rebuilding every read model: rate and peak memory (bench/rebuild_rate.py).
6. The peer: the same cycle in Tryton (bench/peer.py).

Sections 3-5 run on histories of each size up to `--size` (10k, 100k, 1m), generated once
and cached (bench/history.py); sections 1, 2 and 6 do not depend on it. A section that fails
is reported as failed, with its error, and the others still run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cycle_throughput, history, load, peer, rebuild_rate, reports
from bench.harness import DEFAULT_PG_URL, machine
from bench.markdown import render
from projections.runner import REBUILD_BATCH

STANDARD_SIZES = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Plan:
    """How much each section measures."""

    cycles: int = 300  # 1: cycles per run
    runs: int = 3  # 1: runs (the median is reported)
    http_clients: int = 8  # 2: concurrent clients (and a run with one client)
    http_seconds: float = 20.0  # 2: per run
    http_one_client: bool = True  # 2: also with one client (half as long)
    invoices: int = 1000  # 3: invoices timed at each size
    samples: int = 400  # 4: calls per report, way and size, at most ...
    budget: float = 6.0  # 4: ... or this many seconds per report and way, all sizes
    http_reports_every_size: bool = True  # 4: else over HTTP at the largest history only
    batch_size: int = REBUILD_BATCH  # 5: events per transaction, as `tekil projections rebuild`
    peer_cycles: int = 20  # 6: N of the peer's own run (--peer-run)


# For tests and a first look: every section runs end to end, the figures mean little.
QUICK = Plan(
    cycles=8,
    runs=1,
    http_clients=2,
    http_seconds=3,
    http_one_client=False,
    invoices=8,
    samples=8,
    budget=0.2,
    http_reports_every_size=False,
    peer_cycles=5,
)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([km]?)", text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a size (10k, 100k, 1m, or a number of events)")
    return int(match.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[match.group(2)]


def ladder(size: int) -> list[int]:
    """The history sizes measured: the standard ones up to `size`, and `size` itself; a
    size below the first standard one is measured with its half, so that there are two."""
    sizes = [s for s in STANDARD_SIZES if s <= size]
    if size not in sizes:
        sizes.append(size)
    if len(sizes) == 1 and size < STANDARD_SIZES[0]:
        sizes.insert(0, size // 2)
    return sizes


def label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}m"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


class Suite:
    def __init__(
        self,
        *,
        size: int,
        backends: list[str],
        plan: Plan,
        seed: int = 1,
        cache_dir: Path = history.CACHE_DIR,
        pg_url: str = DEFAULT_PG_URL,
        peer_dir: Path = peer.DEFAULT_DIR,
        peer_run: bool = False,
    ) -> None:
        self.sizes = ladder(size)
        self.backends = backends
        self.plan = plan
        self.seed = seed
        self.cache_dir = cache_dir
        self.pg_url = pg_url
        self.peer_dir = peer_dir
        self.peer_run = peer_run
        self.results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "load_average_before": os.getloadavg(),
            "backends": backends,
            "sizes": self.sizes,
            "seed": seed,
            "plan": asdict(plan),
            "errors": {},
        }

    def attempt(self, key: str, work: Callable[[], Any]) -> Any:
        """Run one piece; on failure, record the error under `key` and go on."""
        began = time.monotonic()
        say(f"{key} ...")
        try:
            got = work()
        except Exception as error:
            self.results["errors"][key] = f"{type(error).__name__}: {error}"
            traceback.print_exc(file=sys.stderr)
            say(f"{key}: FAILED ({type(error).__name__}: {error})")
            return None
        say(f"{key}: done in {time.monotonic() - began:.0f} s")
        return got

    def run(self) -> dict[str, Any]:
        p = self.plan
        r = self.results
        r["throughput"] = {}
        for b in self.backends:
            r["throughput"][b] = self.attempt(
                f"1. throughput {b}",
                lambda b=b: cycle_throughput.measure(
                    b, cycles=p.cycles, runs=p.runs, pg_url=self.pg_url
                ),
            )
        r["http"] = {}
        for b in self.backends:
            r["http"][b] = {
                "clients": self.attempt(
                    f"2. HTTP {b}, {p.http_clients} clients",
                    lambda b=b: _http(b, p.http_clients, p.http_seconds, self.pg_url),
                )
            }
            if p.http_one_client:
                r["http"][b]["one_client"] = self.attempt(
                    f"2. HTTP {b}, one client",
                    lambda b=b: _http(b, 1, p.http_seconds / 2, self.pg_url),
                )
        found = {}
        for size in self.sizes:
            got = self.attempt(
                f"history of {label(size)} events",
                lambda size=size: history.cached_store(size, self.seed, self.cache_dir),
            )
            if got is not None:
                found[size] = got
        r["history"] = {b: self._on_histories(found, b) for b in self.backends}
        r["peer"] = self.attempt("6. peer", self._peer)
        r["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        r["load_average_after"] = os.getloadavg()
        return r

    def _on_histories(
        self, found: dict[int, tuple[Path, dict[str, Any]]], backend: str
    ) -> dict[str, Any]:
        """Sections 5, 4 and 3 on copies of the histories, all of them at once (in that order:
        on PostgreSQL the rebuild is what fills the read models; the invoices of 3 change the
        store): the copies are rebuilt one after the other, then the reports and the
        invoices are measured on all sizes taking turns, so that every size sees the same
        machine."""
        p = self.plan
        outs: dict[str, Any] = {}
        urls: dict[str, str] = {}
        with ExitStack() as stack:
            for size, (path, info) in found.items():
                key = f"{backend} {label(size)}"
                outs[label(size)] = out = {
                    "events": info["events"],
                    "file_mb": path.stat().st_size / 2**20,
                }
                url = self.attempt(
                    f"working copy {key}",
                    lambda path=path: stack.enter_context(
                        history.working_copy(path, backend, pg_url=self.pg_url)
                    ),
                )
                if url is None:
                    continue
                out["rebuild"] = self.attempt(
                    f"5. rebuild {key}",
                    lambda url=url: rebuild_rate.in_a_process(
                        url, p.batch_size, check=backend == "sqlite"
                    ),
                )
                if out["rebuild"] is not None:
                    urls[label(size)] = url
                if backend == "sqlite" and out["rebuild"] is not None:
                    out["bounds"] = self.attempt(
                        f"5. what bounds a rebuild {key}",
                        lambda url=url: rebuild_rate.bounds(url, p.batch_size),
                    )
            if not urls:
                return outs
            largest = list(urls)[-1]
            http = [name for name in urls if p.http_reports_every_size or name == largest]
            measured = self.attempt(
                f"4. reports {backend}",
                lambda: reports.measure(urls, samples=p.samples, budget=p.budget, http=http),
            )
            invoiced = self.attempt(
                f"3. invoice latency {backend}",
                lambda: history.invoice_ladder(urls, p.invoices, seed=self.seed),
            )
            for name in urls:
                outs[name]["reports"] = measured[name] if measured else None
                outs[name]["invoice"] = invoiced[name] if invoiced else None
        return outs

    def _peer(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stored": peer.read_results(self.peer_dir)}
        if self.peer_run:
            out["now"] = {"sqlite": peer.run_peer(self.peer_dir, self.plan.peer_cycles)}
        ours: dict[str, float] = {}
        for b in self.backends:
            app = self.results["throughput"].get(b)
            http = (self.results["http"].get(b) or {}).get("clients")
            if app:
                ours[f"application:{b}"] = app["cycle"]["cycles_per_s"]
            if http:
                ours[f"http:{b}"] = http["cycles_per_second"]
        # Against each: the stored results of this machine type, and this run's, measured
        # under the same load as tekil's figures (the one the targets are judged by).
        out["ratios"] = {
            source: peer.ratios(ours, out[source]) for source in ("stored", "now") if source in out
        }
        return out


def _http(backend: str, clients: int, seconds: float, pg_url: str) -> dict[str, Any]:
    got = load.run(backend, 1, clients, seconds, pg_url=pg_url, send=True)
    got.pop("machine", None)
    return got


def say(text: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {text}", file=sys.stderr, flush=True)


def write(results: dict[str, Any], markdown: Path, json_path: Path | None) -> None:
    markdown.write_text(render(results))
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=1, default=str))
