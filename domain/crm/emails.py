"""Who uses an e-mail address: one aggregate per address (id from the address), so that
two leads captured at the same moment with the same e-mail still see each other."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity, natural_id


def email_index_id(email: str) -> UUID:
    return natural_id("email", email.lower())


class EmailIndex(Entity):
    class Registered(Entity.Created):
        email: str
        holder_kind: str
        holder_id: UUID

        def apply(self, index: EmailIndex) -> None:
            index.email = self.email
            index.holders = [(self.holder_kind, self.holder_id)]

    class HolderAdded(Entity.Event):
        holder_kind: str
        holder_id: UUID

        def apply(self, index: EmailIndex) -> None:
            index.holders.append((self.holder_kind, self.holder_id))

    if TYPE_CHECKING:
        email: str
        holders: list[tuple[str, UUID]]

    @classmethod
    def register(cls, email: str, holder_kind: str, holder_id: UUID) -> EmailIndex:
        index: EmailIndex = cls._create(
            cls.Registered,
            id=email_index_id(email),
            email=email,
            holder_kind=holder_kind,
            holder_id=holder_id,
        )
        return index

    def add(self, holder_kind: str, holder_id: UUID) -> None:
        if (holder_kind, holder_id) not in self.holders:
            self.trigger_event(self.HolderAdded, holder_kind=holder_kind, holder_id=holder_id)
