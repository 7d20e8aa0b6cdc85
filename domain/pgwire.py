"""A statement prepared by name on a psycopg connection, called with parameters already in
PostgreSQL's binary format: what a cursor does for the store's insert, without its per-call
machinery (see docs/decisions/0014-the-insert-called-as-a-prepared-statement.md)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import generators
from psycopg.errors import DuplicatePreparedStatement, error_from_result
from psycopg.pq import ExecStatus, Format

# Element types of arrays (pg_type oids): a binary array names its elements' type.
UUID_OID = 2950
INT8_OID = 20
TEXT_OID = 25
BYTEA_OID = 17

_INT8 = struct.Struct(">q")
_ARRAY = struct.Struct(">iiIii")  # dimensions, has NULLs, element type, length, lower bound
_LENGTH = struct.Struct(">i")


def int8(value: int) -> bytes:
    return _INT8.pack(value)


def uuid(value: UUID | str) -> bytes:
    return value.bytes if isinstance(value, UUID) else UUID(value).bytes


def array(element_oid: int, items: Sequence[bytes]) -> bytes:
    """A one-dimensional array of non-NULL elements, as the server's array_recv reads it."""
    head = _ARRAY.pack(1, 0, element_oid, len(items), 1)
    return head + b"".join(_LENGTH.pack(len(item)) + item for item in items)


def int8_array(text: bytes) -> list[int]:
    """A bigint[] result in the text format: b'{1,2,3}'."""
    return [int(v) for v in text[1:-1].split(b",")]


def prepare(conn: psycopg.Connection[Any], name: bytes, query: bytes) -> None:
    """Prepare `query` as `name` on `conn` (already there, from an earlier use: kept). The
    parameters' types are the server's to infer (from the function called)."""
    pgconn = conn.pgconn
    with conn.lock:
        pgconn.send_prepare(name, query)
        results = conn.wait(generators.execute(pgconn))
    for result in results:
        if result.status != ExecStatus.COMMAND_OK:
            error = error_from_result(result, encoding=conn.info.encoding)
            if not isinstance(error, DuplicatePreparedStatement):
                raise error


def call(
    conn: psycopg.Connection[Any], name: bytes, params: Sequence[bytes | None]
) -> bytes | None:
    """Execute the prepared statement `name` with binary `params`: the first column of its
    one row, in the text format. Errors raised as psycopg raises them (`psycopg.errors`)."""
    pgconn = conn.pgconn
    with conn.lock:
        pgconn.send_query_prepared(name, params, [Format.BINARY] * len(params))
        results = conn.wait(generators.execute(pgconn))
    for result in results:
        if result.status != ExecStatus.TUPLES_OK:
            raise error_from_result(result, encoding=conn.info.encoding)
    return results[-1].get_value(0, 0)
