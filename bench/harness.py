"""What the benchmarks share: fresh stores to measure on (a SQLite file in a temporary
directory, a PostgreSQL schema of its own), medians, and a description of the machine."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from domain.settings import postgres_params

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PG_URL = os.environ.get(
    "TEKIL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def pg_connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    pg = postgres_params(url)
    return psycopg.connect(
        dbname=pg["dbname"],
        host=pg["host"],
        port=pg["port"],
        user=pg["user"],
        password=pg["password"],
        **kwargs,
    )


@contextmanager
def sqlite_store(directory: str | None = None, keep: bool = False) -> Iterator[str]:
    """A URL for a new SQLite file (on disk, not tmpfs, when `directory` is on disk)."""
    where = tempfile.mkdtemp(prefix="tekil-bench-", dir=directory)
    try:
        yield f"sqlite:///{where}/store.db"
    finally:
        if not keep:
            shutil.rmtree(where, ignore_errors=True)


@contextmanager
def postgres_store(base_url: str = DEFAULT_PG_URL, keep: bool = False) -> Iterator[str]:
    """A URL for a new schema on the PostgreSQL server at `base_url`, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with pg_connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base_url.split('?', 1)[0]}?schema={schema}"
    finally:
        if not keep:
            with pg_connect(base_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def store(
    backend: str, *, pg_url: str = DEFAULT_PG_URL, directory: str | None = None, keep: bool = False
) -> Iterator[str]:
    if backend == "sqlite":
        with sqlite_store(directory, keep) as url:
            yield url
    elif backend == "postgresql":
        with postgres_store(pg_url, keep) as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r} (sqlite, postgresql)")


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store, with what is still in its write-ahead log (a
    plain file copy would miss the last transactions until a checkpoint)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from importlib.metadata import version

    import sqlalchemy

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {
        "cpu": f"{cpu or platform.processor()} x {os.cpu_count()}",
        "memory": f"{memory:.1f} GiB",
        "python": platform.python_version(),
        "os": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "eventsourcing": version("eventsourcing"),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
    }
    try:
        with pg_connect(DEFAULT_PG_URL, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else "?"
    except psycopg.Error:
        info["postgresql"] = "not reachable"
    return info


def print_machine() -> None:
    for key, value in machine().items():
        print(f"  {key:<14}{value}")
