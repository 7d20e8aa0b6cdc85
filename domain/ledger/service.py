"""Ledger commands: manual journal entries (finance), balanced or refused."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from domain.core import Core, Result, command
from domain.errors import InvalidInput
from domain.ledger.entries import JournalEntry, Line
from domain.values import not_negative, optional_text, required_text


class LedgerCommands(Core):
    @command
    def post_journal_entry(
        self, *, entry_date: date, description: str, lines: list[dict[str, Any]]
    ) -> Result:
        parsed = []
        for i, line in enumerate(lines):
            field = f"lines[{i}]"
            party = line.get("party_id")
            if party is not None and not isinstance(party, UUID):
                raise InvalidInput(f"{field}.party_id", "must be a party id")
            parsed.append(
                Line(
                    account=required_text(f"{field}.account", line.get("account"), max_length=20),
                    debit=not_negative(f"{field}.debit", line.get("debit") or 0),
                    credit=not_negative(f"{field}.credit", line.get("credit") or 0),
                    party_id=party,
                    memo=optional_text(f"{field}.memo", line.get("memo")),
                )
            )
        entry = JournalEntry.post(
            chart=self.chart,
            entry_date=entry_date,
            description=required_text("description", description, max_length=500),
            lines=parsed,
            source_kind="manual",
        )
        return self._save(entry)
