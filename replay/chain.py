"""A hash chain over the notification log, to prove the store intact.

Each link is SHA-256 of the previous link and the event's canonical bytes (position,
aggregate id, version, topic, stored state). `tekil audit seal` extends the chain table in the
store's database (one row per event: position, the event's own hash, the link) and writes its
checkpoints and head to a file kept elsewhere. `tekil audit verify` recomputes the chain: the
table names the exact position of an edited, deleted, inserted, reordered or truncated event;
the file proves the table itself was not rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    func,
    select,
)

from domain.app import Business
from projections.eventlog import read_raw

GENESIS = bytes(32)
SEAL_FORMAT = "tekil-seal/1"
CHECKPOINT_EVERY = 1000
PAGE = 10_000

CHAIN = MetaData()
chain_table = Table(
    "audit_chain",
    CHAIN,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary(32), nullable=False),
    Column("link", LargeBinary(32), nullable=False),
)


def content(originator_id: Any, version: int, topic: str, state: bytes) -> bytes:
    """An event's canonical bytes, without its position."""
    return f"{originator_id}\n{version}\n{topic}\n".encode() + bytes(state)


def notifications(business: Business, start: int = 1) -> Iterator[Any]:
    """Every stored event from `start`, in position order, a page at a time."""
    while True:
        page = business.recorder.select_notifications(start=start, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        start = page[-1].id + 1


def _dashed(originator_id: str) -> str:
    """An id as SQLite stores it (32 hex digits) the way `str(UUID)` writes it."""
    h = originator_id
    if len(h) == 32 and not h.strip("0123456789abcdef"):
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    try:
        return str(UUID(h))
    except ValueError:  # not an id at all (written by hand): hashed as it is, and so caught
        return h


def _rows(business: Business, start: int) -> Iterator[tuple[int, Any, int, str, bytes]]:
    """(position, aggregate id, version, topic, state) of every stored event from `start`: on
    SQLite straight from the table (the id as text), elsewhere through the library."""
    while True:
        raw = read_raw(business.recorder, start, PAGE)
        if raw is None:
            for n in notifications(business, start):
                yield n.id, n.originator_id, n.originator_version, n.topic, n.state
            return
        for position, originator_id, version, topic, state in raw:
            yield position, _dashed(originator_id), version, topic, state
        if len(raw) < PAGE:
            return
        start = raw[-1][0] + 1


def hashed(
    business: Business, start: int = 1, previous: bytes = GENESIS
) -> Iterator[tuple[int, bytes, bytes]]:
    """(position, leaf, link) for each stored event from `start`, chained from `previous`: the
    link covers the position and the content, the leaf (kept to tell an edited event from a
    moved one) the content alone."""
    sha256 = hashlib.sha256
    for position, originator_id, version, topic, state in _rows(business, start):
        data = f"{originator_id}\n{version}\n{topic}\n".encode() + bytes(state)
        previous = sha256(previous + f"{position}\n".encode() + data).digest()
        yield position, sha256(data).digest(), previous


@dataclass
class Seal:
    head_position: int
    head_link: str
    count: int
    checkpoints: list[dict[str, Any]]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SEAL_FORMAT,
            "algorithm": "sha256",
            "link": "sha256(previous link || position\\n || id\\nversion\\ntopic\\n || state)",
            "created_at": self.created_at,
            "head": {"position": self.head_position, "link": self.head_link, "count": self.count},
            "checkpoints": self.checkpoints,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Seal:
        data = json.loads(path.read_text())
        if data.get("format") != SEAL_FORMAT:
            raise ValueError(f"{path} is not a tekil seal file")
        head = data["head"]
        return cls(
            head["position"], head["link"], head["count"], data["checkpoints"], data["created_at"]
        )


class ChainStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_table(self) -> None:
        with self.engine.begin() as conn:
            CHAIN.create_all(conn)

    def head(self) -> tuple[int, bytes, int]:
        """(last position, its link, how many rows) of the chain table."""
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(chain_table)).scalar() or 0
            row = conn.execute(
                select(chain_table.c.position, chain_table.c.link)
                .order_by(chain_table.c.position.desc())
                .limit(1)
            ).first()
        return (row.position, bytes(row.link), count) if row else (0, GENESIS, 0)

    def rows(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every row of the chain table in position order (the driver's rows, no result
        objects: a verify reads a million of them)."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                page = conn.exec_driver_sql(
                    f"SELECT position, leaf, link FROM {chain_table.name} "  # noqa: S608
                    f"WHERE position > {mark} ORDER BY position LIMIT {PAGE:d}",
                    (last,),
                ).fetchall()
            for position, leaf, link in page:
                yield position, bytes(leaf), bytes(link)
            if len(page) < PAGE:
                return
            last = page[-1][0]

    def extend(self, business: Business) -> int:
        """Chain the events recorded since the table's head; returns how many were added."""
        position, link, _ = self.head()
        added = 0
        batch: list[dict[str, Any]] = []
        for p, leaf, new_link in hashed(business, position + 1, link):
            batch.append({"position": p, "leaf": leaf, "link": new_link})
            if len(batch) == PAGE:
                added += self._insert(batch)
        return added + self._insert(batch)

    def _insert(self, batch: list[dict[str, Any]]) -> int:
        if batch:
            with self.engine.begin() as conn:
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                conn.exec_driver_sql(
                    f"INSERT INTO {chain_table.name} (position, leaf, link) "  # noqa: S608
                    f"VALUES ({mark}, {mark}, {mark})",
                    [(r["position"], r["leaf"], r["link"]) for r in batch],
                )
        n = len(batch)
        batch.clear()
        return n


def seal(business: Business, store: ChainStore, every: int = CHECKPOINT_EVERY) -> Seal:
    """Extend the chain to the head of the log and take its checkpoints."""
    store.extend(business)
    checkpoints = []
    count, position, last = 0, 0, GENESIS
    for count, (position, _leaf, last) in enumerate(store.rows(), start=1):
        if count % every == 0:
            checkpoints.append({"count": count, "position": position, "link": last.hex()})
    return Seal(position, last.hex(), count, checkpoints)


@dataclass(frozen=True)
class Finding:
    position: int | None
    problem: str

    def __str__(self) -> str:
        where = f"position {self.position}" if self.position is not None else "chain"
        return f"{where}: {self.problem}"


def verify_chain(
    business: Business, store: ChainStore, sealed: Seal | None = None
) -> tuple[list[Finding], int]:
    """Walk the recomputed chain and the chain table side by side (both in position order)
    and say where they part; check the table against the seal file's checkpoints. Returns
    the findings (empty when intact) and how many sealed events were checked."""
    findings: list[Finding] = []
    edited: dict[int, tuple[bytes, bytes]] = {}  # position -> (sealed leaf, current leaf)
    checkpoints = {}
    if sealed is not None:
        checkpoints = {c["count"]: c for c in sealed.checkpoints}
        checkpoints[sealed.count] = {"position": sealed.head_position, "link": sealed.head_link}
    events = hashed(business)
    rows = store.rows()
    event = next(events, None)
    row = next(rows, None)
    count = 0
    links_agree = True
    table_rewritten = False
    while row is not None:
        count += 1
        position, leaf, link = row
        checkpoint = checkpoints.get(count)
        if (
            checkpoint is not None
            and not table_rewritten
            and (checkpoint["position"] != position or checkpoint["link"] != link.hex())
        ):
            table_rewritten = True
            findings.append(
                Finding(
                    position,
                    "the chain table does not match the seal file "
                    "here: the table itself was rewritten",
                )
            )
        while event is not None and event[0] < position:
            findings.append(Finding(event[0], "inserted: this event is not in the sealed log"))
            links_agree = False
            event = next(events, None)
        if event is None:
            findings.append(
                Finding(
                    position,
                    "truncated: the log ends before this sealed "
                    "event (it and every later one are gone)",
                )
            )
            break
        if event[0] > position:
            findings.append(Finding(position, "deleted: this sealed event is missing"))
            links_agree = False
        else:
            if event[1] != leaf:
                edited[position] = (leaf, event[1])
                links_agree = False
            elif links_agree and event[2] != link:
                findings.append(Finding(position, "the chain table's link was altered here"))
                links_agree = False
            event = next(events, None)
        row = next(rows, None)
    if sealed is not None and count < sealed.count:
        findings.append(
            Finding(
                sealed.head_position,
                f"the chain table holds {count} events, the seal {sealed.count}: it was cut short",
            )
        )
    findings.extend(_classify(edited))
    findings.sort(key=lambda f: f.position or 0)
    return findings, count


def _classify(edited: dict[int, tuple[bytes, bytes]]) -> list[Finding]:
    """An event whose sealed content now sits at another changed position was reordered;
    otherwise it was edited."""
    now_at = {current: p for p, (_, current) in edited.items()}
    out = []
    for position, (sealed_leaf, _) in sorted(edited.items()):
        moved = now_at.get(sealed_leaf)
        if moved is not None and moved != position:
            out.append(Finding(position, f"reordered: this event now sits at position {moved}"))
        else:
            out.append(Finding(position, "edited: the event differs from when it was sealed"))
    return out
