"""Projection rebuild rate: how fast every read model is rebuilt from the whole event log.

1. Generate realistic CRM history through the Business (replay/generator.py) while the
   projection runner follows it live in the background, as `tekil serve` does (untimed).
2. Time what `tekil projections rebuild --all` does (`projections.runner.rebuild`): drop the
   tables, rebuild them from position 0 without their secondary indexes, then index them —
   with `--jobs 2` (its default) the audit trail in a second process. "CPU" is the
   first process's.
3. Check that the rebuilt rows are exactly the rows live processing gave (a digest of every
   read-model table, ordered by primary key), after every run.

The rate counts every event of the log (the runner reads them all, including the ones no read
model handles, such as e-mail index and idempotency records).

Generating 100k events takes about 8 minutes; on SQLite the generated store is kept in
/tmp/tekil-bench-cache (keyed by the shape of every read-model table) and reused by later
runs, which then take about a minute (`--fresh` generates a new one and keeps nothing). On
PostgreSQL the store is generated in a schema of its own and dropped, unless `--reuse` keeps
it as bench_crm_<events>_s<seed>_<shape> (drop it when done).

Run:  .venv/bin/python bench/rebuild_rate.py                         (100k events, SQLite)
      .venv/bin/python bench/rebuild_rate.py --without audit          (all but one read model)
      .venv/bin/python bench/rebuild_rate.py --jobs 1                 (on one process)
      .venv/bin/python bench/rebuild_rate.py --backend postgresql --reuse
      .venv/bin/python bench/rebuild_rate.py --events 20000 --runs 5 --batch-size 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import sql
from sqlalchemy import select

from bench.harness import (
    DEFAULT_PG_URL,
    copy_sqlite,
    machine,
    median,
    pg_connect,
    print_machine,
    store,
)
from domain.app import Business, open_business
from domain.settings import Settings
from projections.engine import Projection, tracking_table
from projections.registry import all_projections
from projections.runner import REBUILD_BATCH, Runner
from projections.runner import rebuild as rebuild_all
from projections.store import ReadStore
from replay.generator import generate

TARGET = 20_000  # events per second on SQLite
CACHE_DIR = Path(os.environ.get("TEKIL_BENCH_CACHE", "/tmp/tekil-bench-cache"))


def digest(reads: ReadStore) -> dict[str, str]:
    """Per read-model table: the row count and a hash of its rows in primary-key order, as
    the database holds them (driver values, so that how a type presents a value in Python
    does not matter, only what was written)."""
    out = {}
    with reads.reader.connect() as conn:
        for projection in reads.projections.values():
            for table in projection.metadata.sorted_tables:
                h = hashlib.sha256()
                rows = 0
                query = select(table).order_by(*table.primary_key.columns)
                sql = str(query.compile(dialect=conn.dialect))
                for row in conn.exec_driver_sql(sql):
                    h.update(repr(tuple(row)).encode())
                    rows += 1
                out[table.name] = f"{rows}:{h.hexdigest()[:16]}"
    return out


def open_stores(url: str, create: bool) -> tuple[Business, ReadStore]:
    business = open_business(Settings(database_url=url), create_tables=create)
    reads = ReadStore(url, all_projections())
    if create:
        reads.create_tables()
    return business, reads


def fill(url: str, events: int, seed: int) -> dict[str, Any]:
    """Generate the history with the runner following live; returns what it left behind."""
    business, reads = open_stores(url, create=True)
    runner = Runner(business, reads, store_url=url)
    runner.start()
    began = time.monotonic()

    def progress(head: int) -> None:
        rate = head / (time.monotonic() - began)
        print(f"\r  generating: {head:,}/{events:,} events ({rate:,.0f}/s)", end="", flush=True)

    try:
        head = generate(
            business, events, seed=seed, after_command=lambda _: runner.wake(), progress=progress
        )
    finally:
        runner.stop()
    print()
    # Whatever the live runner had not reached yet, it takes in now (still live processing:
    # the same runner, its own batches).
    runner.catch_up()
    assert min(runner.positions().values()) == head, runner.positions()
    live = digest(reads)
    info = {
        "events": head,
        "seed": seed,
        "seconds": time.monotonic() - began,
        "live": live,
        "topics": topics(business),
    }
    business.close()
    reads.dispose()
    return info


def topics(business: Business) -> dict[str, int]:
    counts: dict[str, int] = {}
    start = 1
    while True:
        page = business.recorder.select_notifications(start=start, limit=10_000)
        for n in page:
            counts[n.topic] = counts.get(n.topic, 0) + 1
        if len(page) < 10_000:
            return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        start = page[-1].id + 1


@contextmanager
def prepared(backend: str, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any]]]:
    """A store holding the generated history, from the cache when there is one."""
    # The read models' tables (and the tracking table) are part of the key: a store generated
    # before a read model or a column existed has no live rows to check its rebuild against.
    tables = [t for p in all_projections() for t in p.metadata.sorted_tables]
    shape = sorted((t.name, tuple(c.name for c in t.columns)) for t in [*tables, tracking_table])
    signature = hashlib.sha1(repr(shape).encode(), usedforsecurity=False).hexdigest()[:8]
    name = f"crm-{args.events}-s{args.seed}-{signature}"
    if backend == "sqlite" and not args.fresh:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        path, meta = CACHE_DIR / f"{name}.db", CACHE_DIR / f"{name}.json"
        if not (path.exists() and meta.exists()):
            for stale in CACHE_DIR.glob(f"{name}.db*"):
                stale.unlink()
            info = fill(f"sqlite:///{path}", args.events, args.seed)
            meta.write_text(json.dumps(info, indent=1))
        with _copy(path) as url:  # rebuild a copy: the cached file stays as generated
            yield url, json.loads(meta.read_text())
        return
    if args.reuse and backend == "postgresql":
        schema = f"bench_{name.replace('-', '_')}"
        url = f"{args.pg_url.split('?', 1)[0]}?schema={schema}"
        with pg_connect(args.pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT obj_description(oid) FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if row is None or not row[0]:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
                info = fill(url, args.events, args.seed)
                conn.execute(
                    sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                        sql.Identifier(schema), sql.Literal(json.dumps(info))
                    )
                )
                row = (json.dumps(info),)
        yield url, json.loads(row[0])
        return
    with store(backend, pg_url=args.pg_url, directory=args.dir) as url:
        yield url, fill(url, args.events, args.seed)


@contextmanager
def _copy(path: Path) -> Iterator[str]:
    with store("sqlite") as url:
        target = Path(url.split(":///", 1)[1])
        copy_sqlite(path, target)
        yield url


def rebuild(
    business: Business,
    reads: ReadStore,
    batch_size: int,
    projections: list[Projection],
    *,
    jobs: int = 1,
    store_url: str | None = None,
) -> tuple[float, int, float]:
    """Seconds (wall clock), events, and CPU seconds of this process, for what
    `tekil projections rebuild` does: drop the tables, refill them from position 0, index
    (with `jobs` 2 and the store's URL, the audit trail in a second process)."""
    cpu = time.process_time()
    began = time.perf_counter()
    events = rebuild_all(
        business, reads, projections, batch_size=batch_size, jobs=jobs, store_url=store_url
    )
    return time.perf_counter() - began, events, time.process_time() - cpu


# Rebuilds every read model of the store at argv[1] in batches of argv[2] with argv[3] jobs,
# as `tekil projections rebuild --all` does, and prints the figures and peak resident sets:
# its own (VmHWM: ru_maxrss would carry the parent's peak across exec) and that of the second
# process a rebuild on two cores starts (its children's maxrss).
_CHILD = """
import json, resource, sys
from bench.rebuild_rate import open_stores, rebuild
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
url, batch, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
business, reads = open_stores(url, create=False)
before = peak()
projections = list(reads.projections.values())
seconds, events, cpu = rebuild(business, reads, batch, projections, jobs=jobs, store_url=url)
business.close()
reads.dispose()
second = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "events": events, "cpu_seconds": cpu,
                  "rss_before_mb": before, "max_rss_mb": peak(),
                  "second_process_max_rss_mb": second}))
"""


def bounds(url: str, batch_size: int = REBUILD_BATCH) -> dict[str, Any]:
    """SQLite: two rates no rebuild of the store at `url` can pass on this machine, whatever
    it does with an event — the raw read of the events table (all of it, in log order, rows
    as the driver gives them), and the rows the rebuild left in the read models' tables
    written alone: into empty tables of the same shape (keys, no secondary indexes — a
    rebuild makes those after) in a new file beside, from Python by `executemany`, as many
    transactions as the rebuild's batches, the read-model writer's settings; no event read,
    decoded or handled. As events/s of the log, with the rows an event. Both favour the
    bound (a new file, one writer): a rebuild can only be slower."""
    path = Path(url.split(":///", 1)[1])
    names = [t.name for p in all_projections() for t in p.metadata.sorted_tables]
    beside = path.with_name("bounds.db")
    source = sqlite3.connect(path)
    try:
        began = time.perf_counter()
        events = sum(1 for _ in source.execute("SELECT rowid, * FROM stored_events ORDER BY rowid"))
        read = time.perf_counter() - began
        shapes = dict(
            source.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        )
        target = sqlite3.connect(beside, isolation_level=None)
        try:
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "cache_size=-16384",
                "wal_autocheckpoint=10000",
            ):
                target.execute(f"PRAGMA {pragma}")
            counts = {}
            for name in names:
                target.execute(shapes[name])
                counts[name] = source.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            # Each batch: its share of every table's rows, in the order they were inserted,
            # in one transaction, as a rebuild's batch writes them (the rows read untimed, a
            # batch at a time, so that the history is never all in memory).
            batches = max(1, -(-events // batch_size))
            after = dict.fromkeys(names, 0)
            wrote = 0.0
            for i in range(batches):
                pieces = []
                for name, n in counts.items():
                    got = source.execute(
                        f'SELECT rowid, * FROM "{name}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
                        (after[name], n * (i + 1) // batches - n * i // batches),
                    ).fetchall()
                    if got:
                        after[name] = got[-1][0]
                        marks = ", ".join("?" * (len(got[0]) - 1))
                        insert = f'INSERT INTO "{name}" VALUES ({marks})'
                        pieces.append((insert, [row[1:] for row in got]))
                began = time.perf_counter()
                target.execute("BEGIN")
                for insert, got in pieces:
                    target.executemany(insert, got)
                target.execute("COMMIT")
                wrote += time.perf_counter() - began
            rows = sum(counts.values())
        finally:
            target.close()
            for suffix in ("", "-wal", "-shm"):
                beside.with_name(beside.name + suffix).unlink(missing_ok=True)
    finally:
        source.close()
    return {
        "events": events,
        "read_seconds": read,
        "read_rows_per_s": events / read,
        "rows": rows,
        "rows_per_event": rows / events,
        "write_seconds": wrote,
        "write_events_per_s": events / wrote,
    }


def _digest(url: str) -> dict[str, str]:
    reads = ReadStore(url, all_projections())
    try:
        return digest(reads)
    finally:
        reads.dispose()


def in_a_process(
    url: str, batch_size: int = REBUILD_BATCH, *, jobs: int = 2, check: bool = True
) -> dict[str, Any]:
    """Rebuild every read model of the store at `url` in a process of its own, with `jobs`
    as `tekil projections rebuild --jobs` (2, its default: the audit trail is rebuilt by a
    second process): seconds, events, events/s, CPU seconds of the first
    process, and peak memory (its maximum resident set, also before the rebuild began —
    after imports and opening the stores — and the second process's, 0 without one; a
    figure for both is their sum, an upper bound). With `check`, whether the rebuilt rows
    are exactly those live processing left."""
    live = _digest(url) if check else {}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(batch_size), str(jobs)],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    out["rate"] = out["events"] / out["seconds"]
    out["batch_size"] = batch_size
    out["jobs"] = jobs
    out["total_max_rss_mb"] = out["max_rss_mb"] + out["second_process_max_rss_mb"]
    if check:
        got = _digest(url)
        out["differ"] = sorted(t for t, d in got.items() if live.get(t) != d)
        out["identical_to_live"] = not out["differ"]
    return out


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with prepared(backend, args) as (url, info):
        business, reads = open_stores(url, create=False)
        projections = list(reads.projections.values())
        if args.only:
            projections = [reads[n] for n in args.only.split(",")]
        if args.without:
            projections = [p for p in projections if p.name not in args.without.split(",")]
        # The rows live processing left: as generated (a fresh store, or the pristine copy of
        # a cached SQLite file); a kept PostgreSQL schema was rebuilt in place, so its live
        # digest is the one recorded when it was generated.
        live = info["live"] if backend == "postgresql" and args.reuse else digest(reads)
        seconds: list[float] = []
        cpu: list[float] = []
        mismatches: list[str] = []
        for run in range(args.runs):
            elapsed, events, used = rebuild(
                business, reads, args.batch_size, projections, jobs=args.jobs, store_url=url
            )
            seconds.append(elapsed)
            cpu.append(used)
            got = digest(reads)
            bad = [
                t
                for t, d in got.items()
                if live.get(t) != d
                and any(t.startswith(f"rm_{p.name}_v{p.version}_") for p in projections)
            ]
            mismatches += bad
            print(
                f"  {backend} run {run + 1}/{args.runs}: {events:,} events in {elapsed:.2f} s "
                f"= {events / elapsed:,.0f} events/s (CPU {used:.2f} s, load "
                f"{os.getloadavg()[0]:.1f}); rows "
                f"{'identical to live' if not bad else 'DIFFER in ' + ', '.join(bad)}",
                flush=True,
            )
        business.close()
        reads.dispose()
    head = info["events"]
    handled = {t for p in projections for t in p.topics}
    return {
        "backend": backend,
        "events": head,
        "handled_events": sum(c for t, c in info["topics"].items() if t in handled),
        "topics": info["topics"],
        "batch_size": args.batch_size,
        "jobs": args.jobs,
        "projections": [f"{p.name} v{p.version}" for p in projections],
        "seconds": seconds,
        "median_seconds": median(seconds),
        "cpu_seconds": cpu,
        "median_cpu_seconds": median(cpu),
        "load_average": os.getloadavg(),
        "rate": head / median(seconds),
        "rows": live,
        "identical_to_live": not mismatches,
    }


def report(r: dict[str, Any]) -> None:
    print(
        f"\n{r['backend']}: {r['events']:,} events in the log ({r['handled_events']:,} handled "
        f"by a read model), batch size {r['batch_size']}, {r['jobs']} process(es)"
    )
    print(f"  read models rebuilt: {', '.join(r['projections'])}")
    rows = {t: v.split(":")[0] for t, v in r["rows"].items()}
    print("  rows: " + ", ".join(f"{t}={n}" for t, n in rows.items() if n != "0"))
    print(
        f"  rebuild (reset + catch_up), median of {len(r['seconds'])}: "
        f"{r['median_seconds']:.2f} s = {r['rate']:,.0f} events/s "
        f"(CPU {r['median_cpu_seconds']:.2f} s)"
        + (
            f" ({r['rate'] / TARGET:.2f} x the {TARGET:,}/s target)"
            if r["backend"] == "sqlite"
            else ""
        )
    )
    print(f"  rebuilt rows identical to live processing: {r['identical_to_live']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend",
        action="append",
        choices=("sqlite", "postgresql"),
        help="repeat for several (default: sqlite)",
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="as `tekil projections rebuild --jobs` (default 2: the audit trail in a second "
        "process; 1: everything in one)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=REBUILD_BATCH,
        help="events per transaction (default: as `tekil projections rebuild`)",
    )
    parser.add_argument("--only", help="comma-separated read models to rebuild (default: all)")
    parser.add_argument("--without", help="comma-separated read models not to rebuild")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: keep/reuse the generated store in a schema "
        "bench_crm_<events>_s<seed>_<shape> (SQLite always reuses its cached file in "
        f"{CACHE_DIR} unless --fresh)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="SQLite: generate a new store and keep nothing"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--dir", default=None, help="where SQLite files go (default: /tmp)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    print("machine:")
    print_machine()
    results = []
    for backend in args.backend or ["sqlite"]:
        result = measure(backend, args)
        report(result)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
