"""The audit tool at scale: seal, verify and as-of replays of a store of a million events.

1. Generate (or reuse, cached in /tmp/tekil-bench-cache) a realistic SQLite store: CRM and
   order to cash mixed (replay/generator.py, mix `business`: leads, activities, opportunities,
   quotes, orders, reservations, shipments at FIFO cost, invoices, payments, receipts, the
   scheduler's daily jobs), recorded through the Business's own commands — their events
   written many commands per transaction (replay/batched.py) — while the projection runner
   follows in batches, as a live runner does. Untimed.
2. On a copy of it, time the command line as an auditor runs it, each command a process of
   its own: `tekil audit seal --out FILE`, `tekil audit verify --against FILE` (all three
   parts; the time of each part as the command prints it), then the hash chain alone
   (`--no-read-models --no-reconcile`), then `tekil audit as-of <middle> <report>` for a few
   reports. Peak memory is each process's maximum resident set (getrusage).

Run:  .venv/bin/python bench/audit_scale.py                         (1M events, ~15 min to
                                                                        generate the first time)
      .venv/bin/python bench/audit_scale.py --events 100000 --runs 3
      .venv/bin/python bench/audit_scale.py --skip-seal --reports trial-balance
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.harness import ROOT, copy_sqlite, machine, median, print_machine
from domain import context
from domain.settings import Settings, store_env
from projections.engine import tracking_table
from projections.registry import all_projections
from projections.runner import Runner
from projections.store import ReadStore

CACHE_DIR = Path(os.environ.get("TEKIL_BENCH_CACHE", "/tmp/tekil-bench-cache"))
TARGET = 60.0  # seconds for `tekil audit verify` of 1M events on SQLite
TEKIL = [sys.executable, "-m", "replay.cli"]
REPORTS = ("trial-balance", "stock", "pipeline")
ORDER_TO_CASH = (
    "StockReceipt.Recorded",
    "Quote.Accepted",
    "SalesOrder.Placed",
    "StockItem.Reserved",
    "Shipment.Dispatched",
    "Invoice.Issued",
    "Payment.Received",
    "Invoice.MarkedOverdue",
    "JournalEntry.Posted",
    "Lead.Converted",
    "Opportunity.Won",
)

# Runs a command and prints its own peak RSS, and the largest of its children's (workers).
_MEASURE = """
import resource, subprocess, sys, time
began = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
took = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
print(f"@@measure {took:.3f} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime:.3f} "
      f"{done.returncode}")
"""


def signature() -> str:
    tables = [t for p in all_projections() for t in p.metadata.sorted_tables]
    shape = sorted((t.name, tuple(c.name for c in t.columns)) for t in [*tables, tracking_table])
    return hashlib.sha1(repr(shape).encode(), usedforsecurity=False).hexdigest()[:8]


def generate_store(
    path: Path,
    events: int,
    seed: int,
    flush_every: int,
    events_per_day: int = 3000,
    **shape: Any,
) -> dict[str, Any]:
    """A new store at `path` holding `events` events of the business mix, its read models
    fed as it grows, a business day every `events_per_day` events (3000: a million is a
    year), and `shape` passed to the generator (in_flight, products); returns what to
    remember about it."""
    from api.services import Services
    from replay.batched import BatchedBusiness
    from replay.generator import generate

    url = f"sqlite:///{path}"
    # What `tekil db init` does: the store's, read models', keys' and chain's tables, and
    # what exists from the start (the MAIN warehouse).
    Services.open(Settings(database_url=url), initialise=True).close()
    business = BatchedBusiness(env=store_env(url))
    reads = ReadStore(url, all_projections())
    runner = Runner(business, reads)  # as `tekil serve` feeds them (batches of 1000)
    began = time.monotonic()
    days = max(1, events // events_per_day)
    start = date.fromordinal(date.today().toordinal() - days)

    def after(_result: Any) -> None:
        if len(business._pending) >= flush_every:
            business.flush()
            runner.catch_up()

    def progress(head: int) -> None:
        rate = head / (time.monotonic() - began)
        print(f"\r  generating: {head:,}/{events:,} events ({rate:,.0f}/s)", end="", flush=True)

    try:
        head = generate(
            business,
            events,
            seed=seed,
            mix="business",
            on_new_day=business.set_today,
            start_day=start,
            events_per_day=events_per_day,
            **shape,
            after_command=after,
            progress=progress,
        )
        business.flush()
        runner.catch_up()
        print()
        assert min(runner.positions().values()) == head, runner.positions()
        counts = topics(business)
        missing = [t for t in ORDER_TO_CASH if t not in counts]
        if missing:  # a generator gone wrong must not pass for a business's history
            raise RuntimeError(f"the generated history has no {', '.join(missing)}")
    finally:
        business.close()
        reads.dispose()
    return {
        "events": head,
        "seed": seed,
        "first_day": start.isoformat(),
        "seconds": round(time.monotonic() - began, 1),
        "topics": counts,
    }


def topics(business: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    start = 1
    while True:
        page = business.recorder.select_notifications(start=start, limit=10_000)
        for n in page:
            name = n.topic.split(":", 1)[1]
            counts[name] = counts.get(name, 0) + 1
        if len(page) < 10_000:
            return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        start = page[-1].id + 1


def cached_store(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    name = f"business-{args.events}-s{args.seed}-{signature()}"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path, meta = CACHE_DIR / f"{name}.db", CACHE_DIR / f"{name}.json"
    if args.fresh or not (path.exists() and meta.exists()):
        for stale in CACHE_DIR.glob(f"{name}.db*"):
            stale.unlink()
        with context.acting(context.CommandContext(actor="bench")):
            info = generate_store(path, args.events, args.seed, args.flush_every)
        meta.write_text(json.dumps(info, indent=1))
    return path, json.loads(meta.read_text())


def tekil(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `tekil ARGS` in a process of its own: wall seconds, peak RSS (MB) of it and of its
    largest child, CPU seconds, exit code and output."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *TEKIL, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    lines = measured.stdout.splitlines()
    took, rss, cpu, code = lines[-1].split()[1:]
    return {
        "seconds": float(took),
        "max_rss_mb": int(rss) // 1024,
        "cpu_seconds": float(cpu),
        "exit_code": int(code),
        "output": "\n".join(lines[:-1]),
        "stderr": measured.stderr[-4000:],
    }


_PART = re.compile(r"^(ok  |FAIL) (store|read models|reconciliation).*\((\d+\.\d+) s\)$", re.M)


def parts(output: str) -> dict[str, float]:
    """The seconds each part of `tekil audit verify` took, as it prints them."""
    return {m.group(2): float(m.group(3)) for m in _PART.finditer(output)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    cached, info = cached_store(args)
    head = info["events"]
    middle = head // 2
    out: dict[str, Any] = {"events": head, "topics": info["topics"], "runs": []}
    size = cached.stat().st_size
    print(f"  store: {cached} ({size / 2**20:,.0f} MB, {head:,} events)")
    for run in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="tekil-audit-", dir=args.dir))
        try:
            db = work / "store.db"
            copy_sqlite(cached, db)
            url = f"sqlite:///{db}"
            seal_file = work / "seal.json"
            result: dict[str, Any] = {}
            if not args.skip_seal:
                result["seal"] = tekil("audit", "seal", "--out", str(seal_file), "--db", url)
                _show(f"run {run + 1}: seal", result["seal"])
            against = ["--against", str(seal_file)] if seal_file.exists() else []
            if not args.skip_verify:
                full = tekil("audit", "verify", *against, "--db", url)
                full["parts"] = parts(full["output"])
                result["verify"] = full
                _show(f"run {run + 1}: verify (all three parts)", full)
                chain = tekil(
                    "audit", "verify", *against, "--no-read-models", "--no-reconcile", "--db", url
                )
                result["verify_chain"] = chain
                _show(f"run {run + 1}: verify --no-read-models --no-reconcile", chain)
            for report in args.reports:
                got = tekil("audit", "as-of", str(middle), report, "--db", url)
                result[f"as_of {report}"] = got
                _show(f"run {run + 1}: as-of {middle} {report}", got)
            out["runs"].append(result)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _show(label: str, r: dict[str, Any]) -> None:
    extra = ""
    if r.get("parts"):
        extra = " (" + ", ".join(f"{k} {v:.1f} s" for k, v in r["parts"].items()) + ")"
    print(
        f"  {label}: {r['seconds']:.1f} s{extra}, CPU {r['cpu_seconds']:.1f} s, "
        f"peak RSS {r['max_rss_mb']:,} MB, exit {r['exit_code']}, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if r["exit_code"] != 0:
        print("    " + r["output"][-2000:].replace("\n", "\n    "))
        print("    " + r["stderr"][-2000:].replace("\n", "\n    "))
    elif "verify" in label:
        print("    " + r["output"].replace("\n", "\n    "))


def summary(r: dict[str, Any]) -> None:
    runs = r["runs"]
    print(f"\n{r['events']:,} events, median of {len(runs)}:")

    def med(key: str, field: str = "seconds") -> float:
        return median([run[key][field] for run in runs if key in run])

    for key in runs[0]:
        line = f"  {key:<24} {med(key):7.1f} s  peak RSS {med(key, 'max_rss_mb'):,.0f} MB"
        if key == "verify":
            for part in runs[0][key]["parts"]:
                line += f"; {part} {median([run[key]['parts'][part] for run in runs]):.1f} s"
            if r["events"] >= 1_000_000:
                line += f"  ({med(key) / TARGET:.2f} x the {TARGET:.0f} s target)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--reports", nargs="*", default=list(REPORTS))
    parser.add_argument("--skip-seal", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument(
        "--flush-every", type=int, default=2000, help="events per write while generating"
    )
    parser.add_argument("--fresh", action="store_true", help="generate a new store")
    parser.add_argument("--dir", default=None, help="where the copies go (default: /tmp)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    print("machine:")
    print_machine()
    result = measure(args)
    summary(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "result": result}, f, indent=2)


if __name__ == "__main__":
    main()
