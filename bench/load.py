"""Load: the API under many concurrent clients, on SQLite or PostgreSQL, and nothing
acknowledged lost.

1. A fresh store (a SQLite file, or a PostgreSQL schema); `tekil db init`; an admin key
   (`tekil keys create`).
2. `tekil serve` as a real server on a local port: on SQLite one process that also feeds the
   read models; on PostgreSQL `--workers N` uvicorn processes (and, with more than one, the
   projection runner in a process beside them).
3. Untimed set-up over HTTP: products with plenty of stock, one customer per client.
4. N clients (default 50, asyncio + httpx, one connection each) for D seconds (default 60),
   each running the order-to-cash cycle again and again: quote, accept, order, confirm,
   ship, invoice, pay — seven commands (eight with `send=True`, as `tekil bench` runs it:
   the quote is sent before it is accepted). Clients share the products, so some commands meet a
   concurrent change of the same stock (the server retries those; what it cannot settle is a
   409, counted, and the client starts a new cycle).
5. The server is stopped, then the store is read directly: every acknowledged command's
   position must hold an event, and for each command type the store holds exactly as many
   events of its type as were acknowledged (none lost, none recorded twice).

Prints commands/s, cycles/s, p50/p99 latency per command type and overall, the status codes
seen (any 5xx is a failure), the loss check, and the CPU time the server spent a request;
exit status 1 if anything was lost or a 5xx was seen. `run(...)` gives the same figures as a
dict, for other scripts.

Run:  .venv/bin/python bench/load.py            (PostgreSQL, 2 workers, 50 clients, 60 s)
      .venv/bin/python bench/load.py --backend sqlite --clients 8 --seconds 20
      .venv/bin/python bench/load.py --workers 1 --clients 10 --seconds 10 --json /tmp/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import DEFAULT_PG_URL, ROOT, machine, print_machine, store
from domain.app import open_business
from domain.settings import Settings
from projections.eventlog import read_log

TEKIL = [sys.executable, "-m", "replay.cli"]
PRICE = 100
PRODUCTS = 20
# Each command of the cycle, and the event type its acknowledgement must have recorded.
RECORDS = {
    "quote": "Quote.Drafted",
    "send": "Quote.Sent",
    "accept": "Quote.Accepted",
    "order": "SalesOrder.Placed",
    "confirm": "SalesOrder.Confirmed",
    "ship": "Shipment.Dispatched",
    "invoice": "Invoice.Issued",
    "pay": "Payment.Received",
}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    unanswered: int = 0
    cycles: int = 0
    problems: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tekil(*args: str, url: str) -> str:
    done = subprocess.run(
        [*TEKIL, *args, "--db", url], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout


async def command(
    http: httpx.AsyncClient, tally: Tally, name: str, path: str, body: dict[str, Any] | None
) -> dict[str, Any] | None:
    began = time.perf_counter()
    try:
        response = await http.post(path, json=body)
    except httpx.HTTPError as error:
        tally.unanswered += 1
        tally.problems.append(f"{name}: no answer ({type(error).__name__})")
        return None
    tally.latencies[name].append(time.perf_counter() - began)
    tally.statuses[response.status_code] += 1
    if response.status_code >= 500:
        tally.problems.append(f"{name}: {response.status_code} {response.text[:200]}")
    if response.status_code not in (200, 201):
        return None
    answer: dict[str, Any] = response.json()
    tally.acknowledged[name].append(int(answer["position"]))
    return answer


async def client(
    http: httpx.AsyncClient, tally: Tally, customer: str, sku: str, deadline: float, send: bool
) -> None:
    line = {"sku": sku, "quantity": "1"}
    while time.monotonic() < deadline:
        quote = await command(
            http, tally, "quote", "/api/quotes", {"customer_id": customer, "lines": [line]}
        )
        if quote is None:
            continue
        sent = f"/api/quotes/{quote['id']}/send"
        if send and await command(http, tally, "send", sent, None) is None:
            continue
        if await command(http, tally, "accept", f"/api/quotes/{quote['id']}/accept", None) is None:
            continue
        order = await command(http, tally, "order", "/api/orders", {"quote_id": quote["id"]})
        if order is None:
            continue
        steps = [
            ("confirm", f"/api/orders/{order['id']}/confirm", None),
            ("ship", "/api/shipments", {"order_id": order["id"]}),
            ("invoice", "/api/invoices", {"order_id": order["id"]}),
            (
                "pay",
                "/api/payments",
                {"customer_id": customer, "amount": f"{PRICE * 1.2:.2f}", "method": "bank"},
            ),
        ]
        for name, path, body in steps:
            if await command(http, tally, name, path, body) is None:
                break
        else:
            tally.cycles += 1


async def drive(
    base: str,
    key: str,
    clients: int,
    seconds: float,
    measure: Callable[[str], None],
    send: bool = False,
) -> tuple[Tally, float]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        setup = Tally()
        skus = [f"LOAD-{i:02d}" for i in range(PRODUCTS)]
        for sku in skus:
            await command(
                http,
                setup,
                "setup",
                "/api/products",
                {"sku": sku, "name": f"Yük ürünü {sku}", "list_price": str(PRICE)},
            )
        await command(
            http,
            setup,
            "setup",
            "/api/stock/receipts",
            {"lines": [{"sku": s, "quantity": "1000000", "unit_cost": "60"} for s in skus]},
        )
        customers = []
        for i in range(clients):
            answer = await command(
                http,
                setup,
                "setup",
                "/api/customers",
                {"name": f"Müşteri {i:03d} A.Ş.", "payment_terms_days": 30},
            )
            assert answer is not None, setup.problems
            customers.append(answer["id"])
        if setup.problems:
            raise RuntimeError(f"set-up failed: {setup.problems[:3]}")
        tally = Tally()
        measure("start")
        began = time.monotonic()
        deadline = began + seconds

        async def one(i: int) -> None:
            # A connection pool of its own: one pool shared by many clients costs the load
            # generator more CPU per request the more connections it holds (3x at 50).
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as own:
                await client(own, tally, customers[i], skus[i % PRODUCTS], deadline, send)

        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.monotonic() - began
        measure("end")
        return tally, elapsed


def wait_healthy(base: str, server: subprocess.Popen[Any], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become healthy")


def stop(server: subprocess.Popen[Any]) -> None:
    """Ctrl-C, as an operator stops it; killed if it has not stopped within a minute."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()


def stored(url: str) -> tuple[set[int], Counter[str]]:
    """Every position in the store, and the number of events of each type."""
    business = open_business(Settings(database_url=url))
    positions: set[int] = set()
    types: Counter[str] = Counter()
    try:
        start = 1
        while page := read_log(business.recorder, start, 10_000):
            for entry in page:
                positions.add(entry.id)
                types[entry.topic.split(":", 1)[1]] += 1
            start = page[-1].id + 1
    finally:
        business.close()
    return positions, types


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def report(
    tally: Tally, seconds: float, positions: set[int], types: Counter[str]
) -> dict[str, Any]:
    everything = [v for values in tally.latencies.values() for v in values]
    acknowledged = sum(len(v) for v in tally.acknowledged.values())
    missing = [p for values in tally.acknowledged.values() for p in values if p not in positions]
    counts = {
        name: {"acknowledged": len(tally.acknowledged[name]), "stored": types.get(event, 0)}
        for name, event in RECORDS.items()
    }
    # With a request left unanswered, its command may or may not have been recorded: then the
    # store may hold more than was acknowledged, never less.
    exact = tally.unanswered == 0
    mismatched = {
        n: c
        for n, c in counts.items()
        if (c["stored"] != c["acknowledged"] if exact else c["stored"] < c["acknowledged"])
    }
    fivexx = sum(n for status, n in tally.statuses.items() if status >= 500)
    return {
        "seconds": round(seconds, 1),
        "requests": sum(tally.statuses.values()),
        "acknowledged_commands": acknowledged,
        "commands_per_second": round(acknowledged / seconds, 1),
        "cycles": tally.cycles,
        "cycles_per_second": round(tally.cycles / seconds, 2),
        "p50_ms": round(percentile(everything, 50) * 1000, 1),
        "p99_ms": round(percentile(everything, 99) * 1000, 1),
        "by_command": {
            name: {
                "n": len(values),
                "p50_ms": round(percentile(values, 50) * 1000, 1),
                "p99_ms": round(percentile(values, 99) * 1000, 1),
            }
            for name, values in tally.latencies.items()
        },
        "statuses": dict(sorted(tally.statuses.items())),
        "5xx": fivexx,
        "unanswered": tally.unanswered,
        "acknowledged_positions_missing_from_store": len(missing),
        "counts": counts,
        "counts_mismatched": mismatched,
        "problems": tally.problems[:10],
        "ok": fivexx == 0 and not missing and not mismatched,
    }


def _cpu_seconds(root: int) -> float:
    """User + system CPU time of process `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def _busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores, anything but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def run(
    backend: str = "postgresql",
    workers: int = 1,
    clients: int = 50,
    seconds: float = 60,
    *,
    pg_url: str = DEFAULT_PG_URL,
    send: bool = False,
) -> dict[str, Any]:
    """Serve a fresh store with `tekil serve` and drive it with `clients` order-to-cash
    clients for `seconds`; the figures and checks as a dict (`ok` is the verdict).

    On SQLite the server is one process that also feeds the read models; on PostgreSQL,
    `workers` uvicorn processes and, with more than one, the projection runner beside them.
    `server_cpu_ms_per_request` counts the server's processes (not the database's);
    `machine_cpu_busy` is the share of all cores busy during the run, load generator and
    database included."""
    if backend == "sqlite" and workers != 1:
        raise ValueError("the SQLite store is served by one process: workers must be 1")
    with store(backend, pg_url=pg_url) as url, tempfile.TemporaryFile() as log:
        tekil("db", "init", url=url)
        key = tekil("keys", "create", "--name", "load", "--role", "admin", url=url).split()[-1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = ["serve", "--db", url, "--port", str(port), "--workers", str(workers)]
        server = subprocess.Popen(
            [*TEKIL, *serve, "--no-jobs"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        load_before = os.getloadavg()[0]
        meter: dict[str, float] = {}

        def measure(when: str) -> None:
            meter[f"server_{when}"] = _cpu_seconds(server.pid)
            meter[f"client_{when}"] = sum(os.times()[:2])
            meter[f"busy_{when}"] = _busy_seconds()

        try:
            try:
                wait_healthy(base, server)
            except RuntimeError as error:
                log.seek(0)
                tail = log.read().decode(errors="replace").splitlines()[-15:]
                raise RuntimeError("\n".join([str(error), *tail])) from None
            tally, elapsed = asyncio.run(drive(base, key, clients, seconds, measure, send))
        finally:
            stop(server)
            log.seek(0)
            errors = log.read().decode(errors="replace").splitlines()
        positions, types = stored(url)
    result = report(tally, elapsed, positions, types)
    requests = max(result["requests"], 1)
    cores = os.cpu_count() or 1
    result.update(
        backend=backend,
        workers=workers,
        clients=clients,
        load_average_before=round(load_before, 2),
        server_cpu_ms_per_request=round(
            (meter["server_end"] - meter["server_start"]) / requests * 1000, 2
        ),
        client_cpu_ms_per_request=round(
            (meter["client_end"] - meter["client_start"]) / requests * 1000, 2
        ),
        machine_cpu_busy=round((meter["busy_end"] - meter["busy_start"]) / elapsed / cores, 2),
        server_errors=[line for line in errors if "Traceback" in line or "ERROR" in line][:10],
        machine=machine(),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=None, help="default 2 on PostgreSQL")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    workers = args.workers or (1 if args.backend == "sqlite" else 2)
    print_machine()
    print(
        f"  {args.clients} clients for {args.seconds:.0f} s against {args.backend}, "
        f"{workers} worker(s) ...",
        flush=True,
    )
    result = run(args.backend, workers, args.clients, args.seconds, pg_url=args.pg_url)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    verdict = "OK" if result["ok"] else "FAILED"
    print(
        f"\n{verdict}: {result['commands_per_second']:,} commands/s, "
        f"{result['cycles_per_second']} order-to-cash cycles/s, p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms; {result['5xx']} 5xx; "
        f"{result['acknowledged_positions_missing_from_store']} acknowledged commands missing; "
        f"server CPU {result['server_cpu_ms_per_request']} ms a request"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
