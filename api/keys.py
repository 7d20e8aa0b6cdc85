"""API keys: random secrets shown once, stored as SHA-256 hashes, each with its roles.

Keys are access configuration, not business facts: they live in a plain table beside the
store (never in a read model, which could be dropped and rebuilt). The key's name is the
actor on every event its requests cause.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, MetaData, String, Table, select, update

from projections.types import UtcDateTime

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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        return key

    def revoke(self, name: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        return done == 1

    def authenticate(self, key: str) -> Caller | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_keys.c.name, api_keys.c.roles).where(
                    api_keys.c.key_hash == _hash(key), api_keys.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        return Caller(name=row.name, roles=frozenset(row.roles.split(",")))

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    api_keys.c.name, api_keys.c.roles, api_keys.c.created_at, api_keys.c.revoked_at
                ).order_by(api_keys.c.name)
            ).all()
        return [dict(r._mapping) for r in rows]
