"""API keys: random secrets shown once, stored as SHA-256 hashes, each with its roles.

Keys are access configuration, not business facts: they live in a plain table beside the
store (never in a read model, which could be dropped and rebuilt). The key's name is the
actor on every event its requests cause.

A key found valid is trusted for `CHECK_AGAIN_AFTER` seconds before the table is asked
again: a key revoked by another process (`tekil keys revoke`) stops working within that
time, one revoked or rotated through this KeyStore at once.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, MetaData, String, Table, select, update

from projections.types import UtcDateTime

# Seconds a key found valid is trusted without asking the table again.
CHECK_AGAIN_AFTER = 2.0
# More keys than this in use at once, and the trusted ones are forgotten all together.
TRUSTED_KEYS_LIMIT = 10_000

ROLES = ("admin", "sales", "finance", "warehouse", "purchasing", "hr", "manager", "auditor")

KEYS = MetaData()

api_keys = Table(
    "api_keys",
    KEYS,
    Column("name", String(100), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("roles", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)


@dataclass(frozen=True)
class Caller:
    name: str
    roles: frozenset[str]

    def may(self, *roles: str) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))


class InvalidKeyRequest(Exception):
    pass


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys in `engine`'s database; `reader` (an engine on the same database) answers
    look-ups, so that on SQLite they do not take the write lock."""

    def __init__(self, engine: Engine, reader: Engine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine
        # Hash of a key found valid -> (its caller, when to ask the table again).
        self._trusted: dict[str, tuple[Caller, float]] = {}
        self._lock = threading.Lock()

    def create_table(self) -> None:
        with self.engine.begin() as conn:
            KEYS.create_all(conn)

    def create(self, name: str, roles: list[str], *, replace: bool = False) -> str:
        """A new key for `name`; with `replace`, an existing key of that name is rotated."""
        name = name.strip()
        if not name or len(name) > 100 or ":" in name:
            raise InvalidKeyRequest("a key name is 1 to 100 characters, without ':'")
        unknown = sorted(set(roles) - set(ROLES))
        if not roles or unknown:
            raise InvalidKeyRequest(f"roles must be some of {', '.join(ROLES)}; unknown: {unknown}")
        key = "tk_" + secrets.token_urlsafe(32)
        values = {
            "key_hash": _hash(key),
            "roles": ",".join(sorted(set(roles))),
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(api_keys.c.revoked_at).where(api_keys.c.name == name)
            ).first()
            if existing is None:
                conn.execute(api_keys.insert().values(name=name, **values))
            elif replace or existing.revoked_at is not None:
                conn.execute(update(api_keys).where(api_keys.c.name == name).values(**values))
            else:
                raise InvalidKeyRequest(f"a key named {name!r} exists; revoke it first")
        self._distrust(name)
        return key

    def revoke(self, name: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        self._distrust(name)
        return done == 1

    def trusted(self, key: str) -> Caller | None:
        """The caller of `key` if it was found valid less than CHECK_AGAIN_AFTER seconds
        ago; None if that is not known (then `authenticate` asks the table)."""
        found = self._trusted.get(_hash(key))
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def authenticate(self, key: str) -> Caller | None:
        hashed = _hash(key)
        with self.reader.connect() as conn:
            row = conn.execute(
                select(api_keys.c.name, api_keys.c.roles).where(
                    api_keys.c.key_hash == hashed, api_keys.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            self._trusted.pop(hashed, None)
            return None
        caller = Caller(name=row.name, roles=frozenset(row.roles.split(",")))
        with self._lock:
            if len(self._trusted) >= TRUSTED_KEYS_LIMIT:
                self._trusted.clear()
            self._trusted[hashed] = (caller, time.monotonic() + CHECK_AGAIN_AFTER)
        return caller

    def _distrust(self, name: str) -> None:
        with self._lock:
            for hashed, (caller, _) in list(self._trusted.items()):
                if caller.name == name:
                    del self._trusted[hashed]

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    api_keys.c.name, api_keys.c.roles, api_keys.c.created_at, api_keys.c.revoked_at
                ).order_by(api_keys.c.name)
            ).all()
        return [dict(r._mapping) for r in rows]
