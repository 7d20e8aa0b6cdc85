"""Single-event command throughput through the Application, beside the raw
one-row-per-transaction INSERT rate of the same database, measured in the same run.

The command is `complete_activity`: it loads one activity (one stored event), decides, and
saves exactly one event. The activities are set up first, untimed. Within a run, blocks of
raw INSERTs and blocks of commands (of each variant) take turns, so that all of them see the
same moments of the disk (fsync times vary a lot) and of the machine; the ratio is taken per
run and its median reported.

Besides the headline (the application as configured in domain/settings.py), the script
measures where the time goes:

  recorder      the store's write path alone: `recorder.insert_events([one event])`
  read          the store's read path alone: `recorder.select_events(id)`
  get           `repository.get(id)`: read, decode, and rebuild the aggregate
  save          `app.save(aggregate)` after `complete()` (encode and write), no command loop
  lib-recorder, lib-read  (PostgreSQL, with the `library` variant) the same two with
                eventsourcing's own recorder and the pool's pre-ping, as tekil ran before
                domain/pgstore.py
  recorder-1rt  (PostgreSQL) the recorder's lock + NOTIFY + INSERT ... RETURNING done in one
                round trip by a server-side function called on a connection of its own (no
                pool, no recorder): the floor for the write

and the command under other settings (`--variants`):

  default       as tekil runs today (on PostgreSQL: domain/pgstore.py's recorder, one round
                trip per save, and no pre-ping)
  library       (PostgreSQL) eventsourcing's own recorder with POSTGRES_PRE_PING=y: as tekil
                ran before domain/pgstore.py
  cache         AGGREGATE_CACHE_MAXSIZE=10000, AGGREGATE_CACHE_FASTFORWARD=n (aggregates
                stay in memory after a save; safe only with one writing process)
  cache-ff      AGGREGATE_CACHE_MAXSIZE=10000 with fast-forward (each get still asks the
                store for newer events; safe with many processes)
  cache-nocopy  cache, and DEEPCOPY_FROM_AGGREGATE_CACHE=n: commands act on the cached
                aggregate itself (the deep copy costs about half of what the cache saves);
                safe only if commands on one aggregate never run at the same time and a
                failed command evicts what it touched (domain/core.py)
  no-assert     the library's projector without its `isinstance(event, <Protocol>)`
                assert (what `python -O` gives, or a projector_func passed to get())
  preping       POSTGRES_PRE_PING=y (PostgreSQL only: a round trip to check each
                connection taken from the pool, instead of pgstore's look at its socket)
  best          cache-nocopy + no-assert

Run:  .venv/bin/python bench/command_throughput.py     (SQLite and PostgreSQL, about 4 minutes)
      .venv/bin/python bench/command_throughput.py --backend sqlite --commands 5000 --runs 7
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.application import Repository
from eventsourcing.persistence import StoredEvent

from bench.harness import DEFAULT_PG_URL, machine, median, pg_connect, print_machine, store
from domain import context
from domain.app import Business, open_business
from domain.settings import Settings, postgres_params, sqlite_path

CACHE = {"AGGREGATE_CACHE_MAXSIZE": "10000", "AGGREGATE_CACHE_FASTFORWARD": "n"}
NO_COPY = {**CACHE, "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"env": {}},
    "cache": {"env": CACHE},
    "cache-ff": {"env": {"AGGREGATE_CACHE_MAXSIZE": "10000"}, "warm": True},
    "cache-nocopy": {"env": NO_COPY},
    "no-assert": {"env": {}, "no_assert": True},
    "library": {
        "env": {"APPLICATION_RECORDER_TOPIC": "", "POSTGRES_PRE_PING": "y"},
        "backends": ("postgresql",),
    },
    "preping": {"env": {"POSTGRES_PRE_PING": "y"}, "backends": ("postgresql",)},
    "best": {"env": NO_COPY, "no_assert": True},
}
ACTOR = "bench"


# -- the raw baseline ----------------------------------------------------------------------


class RawSQLite:
    """One INSERT per transaction with the sqlite3 module, WAL mode, and the `synchronous`
    setting the store's own connections use."""

    def __init__(self, url: str, synchronous: int) -> None:
        self.conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={int(synchronous)}")
        # The shape of eventsourcing's stored_events table on SQLite (application recorder).
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_events (originator_id TEXT, "
            "originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))"
        )

    def rows(self, n: int, topic: str, state: bytes) -> list[tuple[Any, ...]]:
        return [(uuid.uuid4().hex, 1, topic, state) for _ in range(n)]

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        execute = self.conn.execute
        for row in rows:
            execute("BEGIN")
            execute("INSERT INTO bench_raw_events VALUES (?,?,?,?)", row)
            execute("COMMIT")

    def insert_batch(self, rows: list[tuple[Any, ...]]) -> None:
        """All of `rows` in one transaction."""
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO bench_raw_events VALUES (?,?,?,?)", rows)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    """One INSERT per transaction (autocommit) with psycopg 3."""

    def __init__(self, url: str) -> None:
        schema = postgres_params(url)["schema"]
        self.conn = pg_connect(url, autocommit=True)
        self.conn.execute(f'SET search_path TO "{schema}"')
        # The shape of eventsourcing's stored_events table on PostgreSQL.
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_events (originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, topic text, state bytea, "
            "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        self.conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS bench_raw_events_nid "
            "ON bench_raw_events (notification_id)"
        )

    def rows(self, n: int, topic: str, state: bytes) -> list[tuple[Any, ...]]:
        return [(uuid.uuid4(), 1, topic, state) for _ in range(n)]

    STATEMENT = (
        "INSERT INTO bench_raw_events (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)"
    )

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        execute = self.conn.execute
        for row in rows:
            execute(self.STATEMENT, row)

    def insert_batch(self, rows: list[tuple[Any, ...]]) -> None:
        """All of `rows` in one transaction."""
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(self.STATEMENT, rows)

    def one_round_trip(self, business: Business, n: int, topic: str, state: bytes) -> float:
        """What the library's write path could cost: the same table lock, NOTIFY and INSERT
        ... RETURNING as eventsourcing's PostgreSQL recorder, in one server-side function
        called in autocommit mode (one round trip) instead of a pipelined transaction of
        several statements. Writes into the store's own events table."""
        recorder: Any = business.recorder
        schema, table = recorder.datastore.schema, recorder.events_table_name
        self.conn.execute(
            f'CREATE OR REPLACE FUNCTION "{schema}".bench_insert_event('
            "o uuid, v bigint, t text, s bytea) RETURNS bigint LANGUAGE plpgsql AS $$ "
            "DECLARE nid bigint; BEGIN "
            "SET LOCAL lock_timeout = '30s'; "
            f'LOCK TABLE "{schema}"."{table}" IN EXCLUSIVE MODE; '
            f'NOTIFY "{recorder.channel_name}"; '
            f'INSERT INTO "{schema}"."{table}" (originator_id, originator_version, topic, state) '
            "VALUES (o, v, t, s) RETURNING notification_id INTO nid; "
            "RETURN nid; END $$"
        )
        rows = [(uuid.uuid4(), 1, topic, state) for _ in range(n)]
        execute = self.conn.execute
        statement = f'SELECT "{schema}".bench_insert_event(%s, %s, %s, %s)'

        def work() -> None:
            for row in rows:
                execute(statement, row).fetchone()

        return rate(n, work, "recorder-1rt")

    def close(self) -> None:
        self.conn.close()


# -- the application -------------------------------------------------------------------------


def _project_without_assert(aggregate: Any, events: Any) -> Any:
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


@contextmanager
def no_protocol_assert(enabled: bool) -> Iterator[None]:
    """Make `repository.get` use a projector without the library's Protocol isinstance
    assert (the only effect `python -O` has on this path)."""
    defaults = Repository.get.__kwdefaults__
    assert defaults is not None
    old = defaults["projector_func"]
    if enabled:
        defaults["projector_func"] = _project_without_assert
    try:
        yield
    finally:
        defaults["projector_func"] = old


def acting() -> Any:
    return context.acting(context.CommandContext(actor=ACTOR))


def set_up(business: Business, n: int, warm: bool = False) -> list[uuid.UUID]:
    """N open activities about one lead (untimed)."""
    with acting():
        lead = business.capture_lead(name="Bench Lead", company="Bench A.Ş.", source="web")
        ids = []
        for i in range(n):
            with acting():
                ids.append(
                    business.log_activity(
                        kind="call", subject=f"call {i}", regarding="lead", regarding_id=lead.id
                    ).id
                )
    if warm:
        for i in ids:
            business.repository.get(i)
    return ids


CPU: dict[str, float] = {}  # CPU milliseconds per operation of the last measurement, by name


def rate(n: int, work: Callable[[], None], name: str = "") -> float:
    """Operations per second of wall-clock time; this process's CPU time per operation goes
    into CPU[name] (the rest of the wall time is waiting: fsync, the server, the network)."""
    cpu = time.process_time()
    began = time.perf_counter()
    work()
    wall = time.perf_counter() - began
    CPU[name] = (time.process_time() - cpu) * 1000 / n
    return n / wall


def commands(business: Business, ids: list[uuid.UUID], name: str) -> None:
    for i in ids:
        with acting():
            business.complete_activity(i)


def phases(
    business: Business,
    ids: list[uuid.UUID],
    topic: str,
    state: bytes,
    prefix: str = "",
    store_only: bool = False,
) -> dict[str, float]:
    """Per-operation rates of the pieces a command is made of (with `store_only`, only the
    recorder's read and write)."""
    recorder = business.recorder
    out: dict[str, float] = {}

    def read() -> None:
        for i in ids:
            recorder.select_events(i)

    def get() -> None:
        for i in ids:
            business.repository.get(i)

    def write() -> None:
        for e in events:
            recorder.insert_events([e])

    events = [
        StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=topic, state=state)
        for _ in ids
    ]
    out[prefix + "read"] = rate(len(ids), read, prefix + "read")
    if store_only:
        out[prefix + "recorder"] = rate(len(ids), write, prefix + "recorder")
        return out
    out["get"] = rate(len(ids), get, "get")
    aggregates = [business.repository.get(i) for i in ids]

    def save() -> None:
        with acting():
            for a in aggregates:
                a.complete()
                business.save(a)

    out["save"] = rate(len(ids), save, "save")
    out["recorder"] = rate(len(ids), write, "recorder")
    return out


def sample_event(business: Business) -> tuple[str, bytes]:
    """Topic and state of the kind of event the command records (Activity.Completed)."""
    with acting():
        lead = business.capture_lead(name="Sample", source="web")
        activity = business.log_activity(
            kind="call", subject="sample", regarding="lead", regarding_id=lead.id
        )
        done = business.complete_activity(activity.id)
    assert done.position is not None
    (n,) = business.recorder.select_notifications(start=done.position, limit=1)
    assert n.topic == "domain.crm.activities:Activity.Completed"
    return n.topic, n.state


def store_synchronous(business: Business) -> int:
    with business.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute("PRAGMA synchronous")
        return int(c.fetchone()[0])


# -- the run ----------------------------------------------------------------------------------


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    variants = [v for v in args.variants if backend in VARIANTS[v].get("backends", (backend,))]
    with store(backend, pg_url=args.pg_url, directory=args.dir) as url:
        settings = Settings(database_url=url)
        open_business(settings, create_tables=True).close()  # as `tekil db init` does
        businesses: dict[str, Business] = {}
        for name in variants:
            spec = VARIANTS[name]
            env = dict(spec["env"])
            if backend == "postgresql":
                env.update(spec.get("pg_env", {}))
            businesses[name] = open_business(settings, **env)
        library = businesses.get("library") if backend == "postgresql" else None
        main = businesses[variants[0]]
        topic, state = sample_event(main)
        if backend == "sqlite":
            synchronous = store_synchronous(main)
            raw: RawSQLite | RawPostgres = RawSQLite(url, synchronous)
        else:
            synchronous = -1
            raw = RawPostgres(url)
        n = args.commands
        results: dict[str, list[float]] = {"raw": []}
        results.update({f"command:{v}": [] for v in variants})
        if args.phases:
            results.update({k: [] for k in ("read", "get", "save", "recorder")})
            if library is not None:
                results.update({"lib-read": [], "lib-recorder": []})
            if backend == "postgresql":
                results["recorder-1rt"] = []
        ratios: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {k: [] for k in results}
        if args.phases and backend == "postgresql":
            cpu["recorder-1rt"] = []
        raw.insert(raw.rows(min(n, 200), topic, state))  # warm-up: file growth, statements
        for run in range(args.runs):
            # Untimed: the aggregates every variant will act on, and the raw rows.
            ids = {
                v: set_up(businesses[v], n, warm=VARIANTS[v].get("warm", False)) for v in variants
            }
            rows = raw.rows(n, topic, state)
            wall = dict.fromkeys(["raw", *variants], 0.0)
            used = dict.fromkeys(["raw", *variants], 0.0)
            # Timed in blocks that take turns (raw, each variant, in rotating order), so that
            # all of them see the same moments of the disk and of the machine.
            block = max(1, min(args.block, n))
            for i, begin in enumerate(range(0, n, block)):
                items = ["raw", *variants]
                items = items[i % len(items) :] + items[: i % len(items)]
                for item in items:
                    c, t = time.process_time(), time.perf_counter()
                    if item == "raw":
                        raw.insert(rows[begin : begin + block])
                    else:
                        spec = VARIANTS[item]
                        with no_protocol_assert(spec.get("no_assert", False)):
                            commands(businesses[item], ids[item][begin : begin + block], item)
                    wall[item] += time.perf_counter() - t
                    used[item] += time.process_time() - c
            rates = {k: n / v for k, v in wall.items()}
            results["raw"].append(rates["raw"])
            cpu["raw"].append(used["raw"] * 1000 / n)
            for v in variants:
                results[f"command:{v}"].append(rates[v])
                cpu[f"command:{v}"].append(used[v] * 1000 / n)
                ratios[v].append(rates[v] / rates["raw"])
            if args.phases:
                phase_ids = set_up(main, n)
                for k, value in phases(main, phase_ids, topic, state).items():
                    results[k].append(value)
                if library is not None:
                    measured = phases(library, phase_ids, topic, state, "lib-", store_only=True)
                    for k, value in measured.items():
                        results[k].append(value)
                if isinstance(raw, RawPostgres):
                    results["recorder-1rt"].append(raw.one_round_trip(main, n, topic, state))
                for k in CPU:
                    cpu[k].append(CPU[k])
                CPU.clear()
            line = "  ".join(f"{k}={v:,.0f}/s" for k, v in rates.items())
            print(f"  {backend} run {run + 1}/{args.runs}: {line}", flush=True)
        raw.close()
        for b in businesses.values():
            b.close()
    return {
        "backend": backend,
        "commands_per_run": n,
        "runs": args.runs,
        "event_state_bytes": len(state),
        "sqlite_synchronous": synchronous,
        "rates": results,
        "median": {k: median(v) for k, v in results.items()},
        "cpu_ms": {k: median(v) for k, v in cpu.items()},
        "ratio": {v: median(r) for v, r in ratios.items()},
        "ratios": ratios,
    }


def report(result: dict[str, Any]) -> None:
    med = result["median"]
    raw = med["raw"]
    print(
        f"\n{result['backend']}: {result['commands_per_run']} commands x {result['runs']} runs, "
        f"event state {result['event_state_bytes']} bytes"
        + (f", synchronous={result['sqlite_synchronous']}" if result["backend"] == "sqlite" else "")
    )
    print(f"  {'measure':<22}{'median /s':>12}{'ms each':>10}{'cpu ms':>9}{'vs raw':>9}")
    for key, value in med.items():
        vs = result["ratio"].get(key.split(":", 1)[1]) if key.startswith("command:") else None
        shown = f"{vs:.2f}" if vs is not None else f"{value / raw:.2f}"
        cpu = result["cpu_ms"].get(key, float("nan"))
        print(f"  {key:<22}{value:>12,.0f}{1000 / value:>10.3f}{cpu:>9.3f}{shown:>9}")
    default = result["ratio"].get("default")
    if default is not None:
        verdict = "meets" if default >= 0.5 else "BELOW"
        print(f"  command/raw ratio (median of runs): {default:.2f} -> {verdict} the 0.5 target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend",
        action="append",
        choices=("sqlite", "postgresql"),
        help="repeat for several (default: both)",
    )
    parser.add_argument("--commands", type=int, default=1000, help="commands per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--block",
        type=int,
        default=50,
        help="operations per timed block; blocks of raw INSERTs and of each variant take turns",
    )
    parser.add_argument(
        "--variants",
        default="default,library,cache,cache-ff,cache-nocopy,no-assert,preping,best",
        help="comma-separated, first is the headline (default: all)",
    )
    parser.add_argument(
        "--no-phases",
        dest="phases",
        action="store_false",
        help="skip the read/get/save/recorder breakdown",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--dir", default=None, help="where the SQLite file goes (default: /tmp)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - VARIANTS.keys()
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    backends = args.backend or ["sqlite", "postgresql"]
    print("machine:")
    print_machine()
    results = []
    for backend in backends:
        result = measure(backend, args)
        report(result)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
