"""A journal entry: balanced lines, never edited (corrections are reversals), pointing at the
business fact that caused it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Entity
from domain.errors import InvalidInput
from domain.ledger.chart import Chart
from domain.values import ZERO, round_money


@dataclass(frozen=True)
class Line:
    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    party_id: UUID | None = None
    memo: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "debit": self.debit,
            "credit": self.credit,
            "party_id": self.party_id,
            "memo": self.memo,
        }


def debit(account: str, amount: Decimal, party_id: UUID | None = None) -> Line:
    return Line(account, debit=amount, party_id=party_id)


def credit(account: str, amount: Decimal, party_id: UUID | None = None) -> Line:
    return Line(account, credit=amount, party_id=party_id)


def check_balanced(lines: list[Line], chart: Chart, field: str = "lines") -> list[Line]:
    """Drop zero lines, and insist on a balanced entry of known accounts."""
    kept = [line for line in lines if line.debit or line.credit]
    for i, line in enumerate(kept):
        if line.account not in chart:
            raise InvalidInput(f"{field}[{i}].account", f"{line.account!r} is not in the chart")
        if line.debit < 0 or line.credit < 0 or (line.debit and line.credit):
            raise InvalidInput(
                f"{field}[{i}]", "a line has either a debit or a credit, and it is not negative"
            )
        if round_money(line.debit) != line.debit or round_money(line.credit) != line.credit:
            raise InvalidInput(f"{field}[{i}]", "amounts have at most two decimal places")
    if len(kept) < 2:
        raise InvalidInput(field, "an entry needs at least two non-zero lines")
    debits = sum((line.debit for line in kept), ZERO)
    credits = sum((line.credit for line in kept), ZERO)
    if debits != credits:
        raise InvalidInput(field, f"the entry is not balanced: debits {debits}, credits {credits}")
    return kept


class JournalEntry(Entity):
    class Posted(Entity.Created):
        entry_date: date
        description: str
        lines: list[dict[str, Any]]
        source_kind: str
        source_id: UUID | None
        source_version: int | None
        document: str | None

        def apply(self, entry: JournalEntry) -> None:
            entry.entry_date = self.entry_date
            entry.lines = list(self.lines)

    if TYPE_CHECKING:
        entry_date: date
        lines: list[dict[str, Any]]

    @classmethod
    def post(
        cls,
        *,
        chart: Chart,
        entry_date: date,
        description: str,
        lines: list[Line],
        source_kind: str,
        source: Entity | None = None,
        document: str | None = None,
    ) -> JournalEntry:
        """Post for `source` as it stands after its pending events: the entry points at the
        aggregate and the version that recorded the fact."""
        kept = check_balanced(lines, chart)
        entry: JournalEntry = cls._create(
            cls.Posted,
            entry_date=entry_date,
            description=description,
            lines=[line.as_dict() for line in kept],
            source_kind=source_kind,
            source_id=source.id if source is not None else None,
            source_version=source.version if source is not None else None,
            document=document,
        )
        return entry
