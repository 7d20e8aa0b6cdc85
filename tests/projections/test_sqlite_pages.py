"""What the read models' SQLite connection writes for what it frees."""

from __future__ import annotations

import sqlite3

from sqlalchemy import text

from domain.settings import sqlite_path
from projections.db import make_engine


def _pages_and_checkpoint(path: str, query: str, column: int = 0) -> int:
    """A figure `query` gives on a connection of its own; then the WAL copied into the
    database and emptied."""
    conn = sqlite3.connect(path)
    try:
        figure = int(conn.execute(query).fetchone()[column])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return figure


def test_dropping_a_read_model_table_writes_no_zeroed_pages(sqlite_url: str) -> None:
    """A rebuild drops every table of a read model first: the pages freed go to the free list
    as they are (SQLite built with SECURE_DELETE, as Debian's is, wrote each freed page again
    as zeros: 1.7 GB for a million-event audit trail)."""
    engine = make_engine(sqlite_url, writer=True)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT)"))
            for i in range(0, 4000, 500):
                conn.execute(
                    text("INSERT INTO rows VALUES (:id, :body)"),
                    [{"id": n, "body": "x" * 400} for n in range(i, i + 500)],
                )
        path = sqlite_path(sqlite_url)
        pages = _pages_and_checkpoint(path, "SELECT COUNT(*) FROM dbstat WHERE name = 'rows'")
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE rows"))
        written = _pages_and_checkpoint(path, "PRAGMA wal_checkpoint(PASSIVE)", column=1)
    finally:
        engine.dispose()
    assert pages > 400
    assert written < pages / 20  # the free list's trunk pages and the schema, not every page
