"""BENCHMARKS.md from the results of `tekil bench` (bench/suite.py): each section says what was
measured, the figure, its reference from the same run, the target, and whether it is met."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bench.cycle_throughput import CYCLE, SINGLE
from bench.history import BLOCK, CUSTOMERS
from bench.reports import STATEMENT_LINES
from projections.runner import REBUILD_BATCH

SINGLE_EVENT_RATIO = 0.6  # 1: of the raw one-row-per-transaction INSERT rate
FLAT = 1.2  # 3, 4: the largest history's p95 over the smallest's
REPORT_P95_MS = 10.0  # 4
REBUILD_RATE = 100_000  # 5: events/s on SQLite
REBUILD_MB = 500  # 5: peak memory of a 1M-event rebuild
PEER_APPLICATION, PEER_HTTP = 50, 20  # 6: times Tryton's cycles/s
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def num(value: float | None, places: int = 0) -> str:
    return "–" if value is None else f"{value:,.{places}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def render(r: dict[str, Any]) -> str:
    summary: list[list[str]] = []
    body = [
        *_section_throughput(r, summary),
        *_section_http(r, summary),
        *_section_write_cost(r, summary),
        *_section_reports(r, summary),
        *_section_rebuild(r, summary),
        *_section_peer(r, summary),
    ]
    return "\n".join([*_head(r), *table(["", "target", "figure", ""], summary), "", *body, ""])


def _head(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    began = datetime.fromisoformat(r["started"])
    took = (datetime.fromisoformat(r["finished"]) - began).total_seconds() / 60
    before, after = r["load_average_before"][0], r["load_average_after"][0]
    sizes = ", ".join(f"{s:,}" for s in r["sizes"])
    lines = [
        "# Benchmarks",
        "",
        f"Written by `tekil bench` on {began:%Y-%m-%d %H:%M} UTC ({took:.0f} min): backends "
        f"{', '.join(NAMES[b] for b in r['backends'])}; histories of {sizes} events (seed "
        f"{r['seed']}). Every figure stands beside its reference, measured in the same run on "
        "the same machine. How each is measured is said in its section and in the module that "
        "measures it (`bench/`); `docs/benchmarks.md` tells how the figures came to be what "
        "they are.",
        "",
        "## Machine",
        "",
        *table(
            ["", ""],
            [
                ["CPU", m["cpu"]],
                ["memory", m.get("memory", "?")],
                ["OS", m["os"]],
                ["Python", m["python"]],
                ["SQLite", m["sqlite"]],
                ["PostgreSQL", m["postgresql"]],
                [
                    "libraries",
                    f"eventsourcing {m['eventsourcing']}, SQLAlchemy {m['sqlalchemy']}, "
                    f"psycopg {m['psycopg']}",
                ],
                ["load average", f"{before:.1f} before the run, {after:.1f} after it"],
            ],
        ),
        "",
        "The machine may be shared: wall-clock figures move with its load (±20 % and more "
        "when other work runs); a load average above the number of cores means the figures "
        "are low.",
        "",
    ]
    if r["errors"]:
        lines += ["**Failed in this run** (the rest ran):", ""]
        lines += [f"* {key}: `{error}`" for key, error in r["errors"].items()]
        lines.append("")
    return [*lines, "## Summary", ""]


# -- 1 ---------------------------------------------------------------------------------------


def _section_throughput(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    out = [
        "## 1. Command throughput through the Application",
        "",
        "Each command of the order-to-cash cycle — create a quote, send it, accept it, place the "
        "order, confirm it (reserving stock), ship it (FIFO cost and its journal entry), invoice "
        "it (numbered, journal entry, receivables) and receive the payment — timed alone "
        "through `Business`, on a fresh store, no projection runner, one writer; with "
        "`complete_activity` (one stored event) as in `bench/command_throughput.py`. "
        "**Reference**: raw INSERTs of the same database into a table of the shape of the "
        "store's events table (same state size), one row per transaction and in batches, in "
        "blocks that take turns with the cycles (`bench/cycle_throughput.py`). Medians of the "
        "runs; ratios are taken per run. The one-row INSERT is mostly a wait for the disk's "
        "fsync, a command mostly CPU: a slow or busy disk raises the ratio, a fast one lowers "
        "it.",
        "",
    ]
    for backend, t in r["throughput"].items():
        if not t:
            continue
        out += [
            f"**{NAMES[backend]}**: {t['runs']} runs × {t['cycles_per_run']} cycles",
            "",
        ]
        rows = [
            ["raw INSERT, one row per transaction", "1", num(t["raw_per_s"]), "", "1.00"],
            [
                f"raw INSERT, {t['raw_batch_rows']:,} rows per transaction",
                "",
                "",
                f"{num(t['raw_batched_rows_per_s'])} rows/s",
                "",
            ],
        ]
        for name in [*CYCLE, SINGLE]:
            c = t["commands"][name]
            rows.append(
                [
                    f"`{name}`",
                    num(c["events"], 1 if c["events"] % 1 else 0),
                    num(c["per_s"]),
                    num(c["events_per_s"]),
                    f"{c['vs_raw']:.2f}",
                ]
            )
        cy = t["cycle"]
        rows.append(
            [
                f"**order-to-cash cycle** ({len(CYCLE)} commands)",
                num(cy["events"]),
                f"**{num(cy['cycles_per_s'], 1)} cycles/s** ({num(cy['commands_per_s'])} "
                "commands/s)",
                num(cy["events_per_s"]),
                "",
            ]
        )
        out += table(["", "events", "per second", "events/s", "vs raw one-row"], rows)
        single = {n: c for n, c in t["commands"].items() if c["events"] == 1}
        worst = min(single.items(), key=lambda kv: kv[1]["vs_raw"]) if single else None
        ok = worst[1]["vs_raw"] >= SINGLE_EVENT_RATIO if worst else None
        shown = f"{worst[1]['vs_raw']:.2f} (`{worst[0]}`, the lowest)" if worst else "–"
        out += [
            "",
            f"Target: single-event commands ({', '.join(f'`{n}`' for n in single)}) at least "
            f"{SINGLE_EVENT_RATIO} of the raw one-row-per-transaction rate: {shown} — "
            f"{met(ok)}.",
            "",
        ]
        summary.append(
            [
                f"1. single-event commands vs raw INSERT, {NAMES[backend]}",
                f"≥ {SINGLE_EVENT_RATIO}",
                shown,
                met(ok),
            ]
        )
    return out


# -- 2 ---------------------------------------------------------------------------------------


def _section_http(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    out = [
        "## 2. The order-to-cash cycle over HTTP",
        "",
        "`tekil serve` (uvicorn, one process, read models fed in the same process) on a fresh "
        "store; clients (asyncio + httpx, on the same machine) each run the cycle of section 1 "
        "again and again as eight POSTs (`bench/load.py`, `send=True`); afterwards the store is "
        "read back: every acknowledged command must be in it. **Reference**: the same cycle "
        "through the Application (section 1), same backend, same run.",
        "",
    ]
    rows = []
    for backend, runs in r["http"].items():
        app = (r["throughput"].get(backend) or {}).get("cycle", {}).get("cycles_per_s")
        for h in (runs or {}).values():
            if not h:
                continue
            lost = h["acknowledged_positions_missing_from_store"]
            rows.append(
                [
                    NAMES[backend],
                    str(h["clients"]),
                    num(h["commands_per_second"], 1),
                    f"**{num(h['cycles_per_second'], 2)}**",
                    num(h["p50_ms"], 1),
                    num(h["p99_ms"], 1),
                    f"{h['5xx']} / {lost}",
                    num(h.get("server_cpu_ms_per_request"), 2),
                    num(app, 1),
                ]
            )
    header = ["backend", "clients", "commands/s", "cycles/s", "p50 ms", "p99 ms"]
    header += ["5xx / lost", "server CPU ms a request", "Application cycles/s (ref.)"]
    out += table(header, rows)
    out += [
        "",
        "Target: none of its own (section 6 compares it with Tryton); no 5xx and nothing "
        "acknowledged lost.",
        "",
    ]
    return out


# -- 3 ---------------------------------------------------------------------------------------


def _by_size(r: dict[str, Any], backend: str, key: str) -> list[tuple[str, Any, int]]:
    return [
        (size, got[key], got["events"])
        for size, got in r["history"].get(backend, {}).items()
        if got and got.get(key)
    ]


def _section_write_cost(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    out = [
        "## 3. The cost of a write against history",
        "",
        "Issuing an invoice (`invoice_order`: the invoice, the number series, the order, the "
        "customer's receivables and the journal entry, in one save) through the Application on "
        "top of a history of a whole business (`replay/generator.py`'s business mix), on a "
        f"copy of the store. Orders of {CUSTOMERS} of the history's customers (the same number "
        "at every size) and of its products are placed, confirmed and shipped first "
        "(untimed); then each invoice is timed alone, with its customer's receivables loaded "
        "from the store (not from memory: the part of the command that reads history, as for "
        "a customer not invoiced lately). The histories of every size take turns, "
        f"{BLOCK} invoices at a time, each round in another order, so that all see the same "
        "machine. The first five of each load what a running server already holds (the "
        "year's number series, ...): shown apart as cold, not in the percentiles. No "
        "projection runner runs meanwhile (`bench/history.py` `invoice_ladder`). "
        "**Reference**: the same at the smallest history.",
        "",
    ]
    for backend in r["history"]:
        got = _by_size(r, backend, "invoice")
        if not got:
            continue
        rows = [
            [
                f"{events:,}",
                str(i["invoices"]),
                num(i["p50_ms"], 2),
                f"**{num(i['p95_ms'], 2)}**",
                num(i["p99_ms"], 2),
                ", ".join(num(c, 1) for c in i["cold_ms"]),
            ]
            for _, i, events in got
        ]
        out += [f"**{NAMES[backend]}**", ""]
        out += table(
            ["history (events)", "invoices", "p50 ms", "p95 ms", "p99 ms", "cold ms"], rows
        )
        ratio = got[-1][1]["p95_ms"] / got[0][1]["p95_ms"] if len(got) > 1 else None
        ok = ratio <= FLAT if ratio is not None else None
        span = f"{got[-1][2]:,} / {got[0][2]:,} events"
        figure = f"{ratio:.2f} ({span})" if ratio is not None else "– (one size)"
        out += [
            "",
            f"Target: flat — p95 at the largest history at most {FLAT} × p95 at the smallest "
            f"(issue 6 asks 1M against 10k): {figure} — {met(ok)}.",
            "",
        ]
        summary.append([f"3. invoice p95, {NAMES[backend]}", f"ratio ≤ {FLAT}", figure, met(ok)])
    return out


# -- 4 ---------------------------------------------------------------------------------------


def _section_reports(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    out = [
        "## 4. Report latency against history",
        "",
        "On the same histories (read models as live processing left them): **query** is the "
        "API's route function itself (`api/routers/…`), called as FastAPI calls it with a read "
        "connection from the read store's pool, without HTTP and JSON encoding; **HTTP** is "
        "`GET` of the same report from `tekil serve` (uvicorn, one client, kept-alive "
        "connection). **Reference (CRUD)**: the same report as a plain SQL aggregation over "
        "normalised document tables — invoices and their lines, payment allocations, journal "
        "lines, stock moves, order and shipment lines, opportunities — filled from the same "
        "store, as a CRUD ERP computes it when asked (`bench/crud.py`); `agree` says whether "
        "both gave the same figure (the trial balance's total debit, the stock value, …). "
        "Profitability is by product; the customer statement is that of a customer with about "
        f"{STATEMENT_LINES} lines this year at every size (a statement's cost follows its "
        "lines; the busiest of 8,000 customers has more than the busiest of 70), its lines "
        "given under the table; cash flow is the API's default window (30 days either side of "
        "today). The histories of every size take turns, ten calls at a time "
        "(`bench/reports.py` `taking_turns`). p50 / p95 in ms.",
        "",
    ]
    for backend in r["history"]:
        got = _by_size(r, backend, "reports")
        if not got:
            continue
        names = list(got[0][1]["reports"])
        header = ["report"]
        for _, _, events in got:
            header += [f"query {events:,}", f"CRUD {events:,}", f"HTTP {events:,}"]
        header += ["agree", "p95 ≤ 10 ms, flat"]
        rows = []
        failing = []
        for name in names:
            row = [name]
            p95s = []
            agree = True
            for _, rep, _ in got:
                one = rep["reports"].get(name, {})
                q, c, h = one.get("query"), one.get("crud"), one.get("http")
                row += [_pair(q), _pair(c), num(h["p95_ms"], 1) if h else "–"]
                p95s.append(q["p95_ms"] if q else float("inf"))
                agree = agree and one.get("agree", False)
            ratio = p95s[-1] / p95s[0] if len(p95s) > 1 and p95s[0] else None
            ok = max(p95s) <= REPORT_P95_MS and (ratio is None or ratio <= FLAT)
            if not ok:
                failing.append(name)
            flat = f"×{ratio:.2f}" if ratio is not None else ""
            row += ["yes" if agree else "**no**", f"{met(ok)} {flat}".strip()]
            rows.append(row)
        out += [f"**{NAMES[backend]}**", ""]
        out += table(header, rows)
        lines = ", ".join(
            f"{rep.get('statement_lines', '?')} at {events:,}" for _, rep, events in got
        )
        answers = "; ".join(
            f"{name} "
            + " → ".join(
                str(rep["reports"].get(name, {}).get("answer_rows", "?")) for _, rep, _ in got
            )
            for name in names
        )
        out += [
            "",
            f"The customer statement's lines: {lines}. Rows in each answer (its groups, lines, "
            f"periods, accounts; smallest to largest history): {answers}.",
        ]
        ok_all = not failing
        figure = f"{len(names) - len(failing)} of {len(names)} reports"
        out += [
            "",
            f"Target: p95 ≤ {REPORT_P95_MS:.0f} ms at every size and flat (largest history ≤ "
            f"{FLAT} × smallest; ×N above): {figure} — {met(ok_all)}"
            + (f" (not: {', '.join(failing)})." if failing else "."),
            "",
        ]
        summary.append(
            [
                f"4. report p95, {NAMES[backend]}",
                f"≤ {REPORT_P95_MS:.0f} ms, flat",
                figure,
                met(ok_all),
            ]
        )
    return out


def _pair(t: dict[str, Any] | None) -> str:
    return f"{t['p50_ms']:.1f} / {t['p95_ms']:.1f}" if t else "–"


# -- 5 ---------------------------------------------------------------------------------------


def _section_rebuild(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    out = [
        "## 5. Rebuilding every read model",
        "",
        "What `tekil projections rebuild --all` does, with its default `--jobs 2` — drop every "
        f"read model's tables, refill them from position 0 in batches of {REBUILD_BATCH:,} "
        "events (the audit trail in a second process beside the others), index them — started "
        "as a process of its own on a copy of each history; the rate counts every event of the "
        "log; CPU is the first process's; peak memory is each process's maximum resident set, "
        "added (an upper bound of what both held at once; in brackets, the first process "
        "before the rebuild began, after imports and opening the stores). On "
        "SQLite the rebuilt rows are compared with those live processing left; on PostgreSQL "
        "the history's events were copied into a new schema first and the rebuild is what "
        "fills its read models (`bench/rebuild_rate.py`). **References**: the raw batched "
        "INSERT rate of the same database (section 1), rows of the events table's shape; on "
        "SQLite, measured on each copy after its rebuild, two rates no rebuild can pass "
        "whatever it does with an event (`rebuild_rate.bounds`): the raw read of the whole "
        "events table, and the rows the rebuild left (so many an event) written alone into "
        "empty tables of the same shape in a new file — in batches as the rebuild's, from "
        "Python, no event read, decoded or handled.",
        "",
    ]
    rows = []
    for backend in r["history"]:
        raw = (r["throughput"].get(backend) or {}).get("raw_batched_rows_per_s")
        for name, b, events in _by_size(r, backend, "rebuild"):
            same = b.get("identical_to_live")
            bound = r["history"][backend][name].get("bounds") or {}
            rows.append(
                [
                    NAMES[backend],
                    f"{events:,}",
                    num(b["seconds"], 1),
                    f"**{num(b['rate'])}**",
                    num(b["cpu_seconds"], 1),
                    f"**{num(b['total_max_rss_mb'])}** = {num(b['max_rss_mb'])} + "
                    f"{num(b['second_process_max_rss_mb'])} ({num(b['rss_before_mb'])})",
                    "–" if same is None else ("yes" if same else f"**no**: {b['differ']}"),
                    num(raw),
                    num(bound.get("read_rows_per_s")),
                    num(bound.get("rows_per_event"), 2),
                    num(bound.get("write_events_per_s")),
                ]
            )
    header = ["backend", "events", "seconds", "events/s", "CPU s", "peak MB = 1st + 2nd (before)"]
    header += ["rows as live", "raw batched INSERT rows/s (ref.)"]
    header += ["raw read of the events rows/s (ref.)", "rows an event"]
    header += ["its rows written alone events/s (ref.)"]
    out += table(header, rows)
    sqlite = _by_size(r, "sqlite", "rebuild")
    rate_ok = sqlite[-1][1]["rate"] >= REBUILD_RATE if sqlite else None
    rate = f"{sqlite[-1][1]['rate']:,.0f} events/s at {sqlite[-1][2]:,}" if sqlite else "–"
    million = [
        (b, got)
        for backend in r["history"]
        for _, got, events in _by_size(r, backend, "rebuild")
        if events >= 1_000_000
        for b in [backend]
    ]
    if million:
        peak = max(got["total_max_rss_mb"] for _, got in million)
        mem_ok: bool | None = peak <= REBUILD_MB
        memory = f"{peak:,.0f} MB at 1M events"
    else:
        mem_ok = None
        largest = [
            got["total_max_rss_mb"] for b in r["history"] for _, got, _ in _by_size(r, b, "rebuild")
        ]
        memory = (
            f"not measured at 1M (`--size 1m`); {max(largest):,.0f} MB at the largest size"
            if largest
            else "–"
        )
    out += [
        "",
        f"Targets: at least {REBUILD_RATE:,} events/s on SQLite: {rate} — {met(rate_ok)}; a "
        f"1M-event rebuild within {REBUILD_MB} MB: {memory} — {met(mem_ok)}.",
        "",
    ]
    bound = r["history"]["sqlite"][sqlite[-1][0]].get("bounds") if sqlite else None
    if bound:
        out += [_rate_bound(bound, sqlite[-1][2]), ""]
    summary.append(["5. rebuild rate, SQLite", f"≥ {REBUILD_RATE:,} events/s", rate, met(rate_ok)])
    summary.append(["5. rebuild memory, 1M events", f"≤ {REBUILD_MB} MB", memory, met(mem_ok)])
    return out


def _rate_bound(bound: dict[str, Any], events: int) -> str:
    """What the rows a rebuild writes leave of the target rate's time an event."""
    written = bound["write_events_per_s"]
    said = (
        f"What bounds it: at {events:,} events the rows the rebuild leaves "
        f"({bound['rows_per_event']:.2f} an event), written alone without reading an event, "
        f"go in at {written:,.0f} events/s"
    )
    if written < REBUILD_RATE:
        return (
            f"{said} — below the target before any event is read, decoded or handled: "
            f"{REBUILD_RATE:,} events/s is beyond these read models on this machine's SQLite."
        )
    left = 1e6 / REBUILD_RATE - 1e6 / written
    return (
        f"{said}, which leaves {left:.1f} µs an event for reading, decoding and handling it "
        f"at {REBUILD_RATE:,} events/s (the raw read alone: "
        f"{1e6 / bound['read_rows_per_s']:.1f} µs)."
    )


# -- 6 ---------------------------------------------------------------------------------------


def _section_peer(r: dict[str, Any], summary: list[list[str]]) -> list[str]:
    p = r.get("peer") or {}
    out = [
        "## 6. The peer: Tryton",
        "",
        "The same order-to-cash cycle in Tryton 8.2 (`../shared/peers/tryton/`, its README): "
        "sale, quote, confirm (shipment and invoice created), ship (assign, pick, pack, done), "
        "post the invoice, pay it — one client process. Its `server` mode (trytond's model API "
        "in process) is set against tekil's Application (section 1), its `proteus` mode (the "
        "client library an integration uses, in process) against tekil over HTTP with "
        "concurrent clients (section 2). Tryton's figures: those its folder holds, measured "
        "on this machine type (`stored`), and, with `--peer-run`, its own run during this one "
        "(`now`: under the same load as tekil's figures, so the targets are judged by it "
        "when there is one).",
        "",
    ]
    rows = []
    targets = {"application": PEER_APPLICATION, "http": PEER_HTTP}
    ratios = p.get("ratios") or {}
    for source, measured in ratios.items():
        for key, got in measured.items():
            way, backend = key.split(":")
            what = f"{'Application' if way == 'application' else 'HTTP'}, {NAMES[backend]}"
            ok = got["times"] >= targets[way]
            rows.append(
                [
                    what,
                    num(got["tekil_cycles_per_s"], 2),
                    f"{got['tryton_mode']}: {num(got['tryton_cycles_per_s'], 2)} ({source})",
                    f"**{got['times']:,.1f}×**",
                    f"≥ {targets[way]}×",
                    met(ok),
                ]
            )
            # Judged by the peer's run during this one where there is one, else the stored.
            if source == "now" or key not in ratios.get("now", {}):
                figure = f"{got['times']:,.1f}× ({source})"
                other = ratios.get("stored" if source == "now" else "now", {}).get(key)
                if other:
                    figure += f"; {other['times']:,.1f}× against the stored figure"
                summary.append([f"6. vs Tryton, {what}", f"≥ {targets[way]}×", figure, met(ok)])
    out += table(["tekil", "cycles/s", "Tryton cycles/s", "times", "target", ""], rows)
    sources = [
        f"{source}, {NAMES[b]}: {got['source']}"
        for source in ("stored", "now")
        for b, got in p.get(source, {}).items()
    ]
    return [*out, "", "Tryton's figures: " + "; ".join(sources) + ".", ""]
