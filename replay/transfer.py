"""Moving the store: export events as JSON lines, import them into an empty store.

Each line is one stored event: its position in the source, aggregate id, version, topic and
the event's state as JSON. Imported events keep their aggregate ids, versions, topics and
state byte for byte (positions are renumbered by the target store, in the same order)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.app import Business
from replay.chain import notifications

FORMAT = "tekil-events/1"


def _encode_state(state: Any) -> bytes:
    # The same settings as the store's JSON transcoder: the bytes round-trip exactly.
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode("utf8")


def export_lines(
    business: Business, since: datetime | None = None, until: datetime | None = None
) -> Iterator[str]:
    for n in notifications(business):
        state = json.loads(bytes(n.state))
        if since is not None or until is not None:
            stamp = datetime.fromisoformat(state["timestamp"]["_data_"])
            if (since is not None and stamp < since) or (until is not None and stamp > until):
                continue
        yield json.dumps(
            {
                "position": n.id,
                "originator_id": str(n.originator_id),
                "originator_version": n.originator_version,
                "topic": n.topic,
                "state": state,
            },
            ensure_ascii=False,
        )


class ImportRefused(Exception):
    pass


def import_lines(business: Business, lines: Iterable[str], batch_size: int = 1000) -> int:
    """Append exported events to an empty store, in their order; returns how many."""
    held = business.recorder.max_notification_id()
    if held:
        raise ImportRefused(
            f"the target store already holds events (up to position {held}): import only into "
            "a new database, without `tekil db init` first (import creates the tables)"
        )
    batch: list[StoredEvent] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            batch.append(
                StoredEvent(
                    originator_id=UUID(record["originator_id"]),
                    originator_version=int(record["originator_version"]),
                    topic=record["topic"],
                    state=_encode_state(record["state"]),
                )
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ImportRefused(f"line {number} is not an exported event: {error}") from None
        if len(batch) >= batch_size:
            count += _insert(business, batch)
    return count + _insert(business, batch)


def _insert(business: Business, batch: list[StoredEvent]) -> int:
    if batch:
        business.recorder.insert_events(batch)
    n = len(batch)
    batch.clear()
    return n


def write_export(business: Business, out: IO[str], **window: Any) -> int:
    count = 0
    for line in export_lines(business, **window):
        out.write(line + "\n")
        count += 1
    return count
