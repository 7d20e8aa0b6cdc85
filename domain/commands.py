"""The record that a command with an idempotency key was carried out, and what it answered.

It is saved in the same `save` as the command's own events, so a command and its record
exist together or not at all: a repeat finds the record and answers as the first time did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity, natural_id


def command_record_id(actor: str, key: str) -> UUID:
    # Keys are scoped per caller: two API keys may happen to choose the same key.
    return natural_id("command", f"{actor}\n{key}")


class CommandRecord(Entity):
    class Recorded(Entity.Created):
        actor: str
        key: str
        fingerprint: str
        result_id: UUID
        result_version: int
        result_extra: dict[str, Any]

        def apply(self, record: CommandRecord) -> None:
            record.actor = self.actor
            record.key = self.key
            record.fingerprint = self.fingerprint
            record.result_id = self.result_id
            record.result_version = self.result_version
            record.result_extra = dict(self.result_extra)

    if TYPE_CHECKING:
        actor: str
        key: str
        fingerprint: str
        result_id: UUID
        result_version: int
        result_extra: dict[str, Any]

    @classmethod
    def record(
        cls,
        *,
        actor: str,
        key: str,
        fingerprint: str,
        result_id: UUID,
        result_version: int,
        result_extra: dict[str, Any],
    ) -> CommandRecord:
        record: CommandRecord = cls._create(
            cls.Recorded,
            id=command_record_id(actor, key),
            actor=actor,
            key=key,
            fingerprint=fingerprint,
            result_id=result_id,
            result_version=result_version,
            result_extra=result_extra,
        )
        return record
