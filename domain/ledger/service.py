"""Ledger commands: manual journal entries (finance), balanced or refused."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from domain.core import Core, Result, command
from domain.crm.parties import Party
from domain.errors import InvalidInput
from domain.ledger.entries import JournalEntry, Line
from domain.values import not_negative, optional_text, required_text

# Accounts kept by documents alone: a manual line there would have no invoice, receipt or
# shipment behind it, and the sub-ledgers (open items, stock) would part from the ledger.
DOCUMENT_ONLY_ROLES = ("receivables", "inventory", "sales", "cost_of_goods_sold")
# Accounts whose lines must name the party they are owed by or to.
PARTY_ROLES = ("payables", "customer_advances")


class LedgerCommands(Core):
    @command
    def post_journal_entry(
        self, *, entry_date: date, description: str, lines: list[dict[str, Any]]
    ) -> Result:
        """A manual entry (finance): balanced, on accounts of the chart, never on the accounts
        that documents alone keep; lines on payables or advances name their party."""
        document_only = {self.chart.role(r): r for r in DOCUMENT_ONLY_ROLES}
        needs_party = {self.chart.role(r) for r in PARTY_ROLES}
        parsed = []
        for i, line in enumerate(lines):
            field = f"lines[{i}]"
            party = line.get("party_id")
            if party is not None and not isinstance(party, UUID):
                raise InvalidInput(f"{field}.party_id", "must be a party id")
            account = str(line.get("account") or "")
            if account in document_only:
                raise InvalidInput(
                    f"{field}.account",
                    f"{account} ({document_only[account].replace('_', ' ')}) is kept by "
                    "documents only: record the invoice, receipt, shipment or payment instead",
                )
            if account in needs_party and party is None:
                raise InvalidInput(f"{field}.party_id", f"a line on {account} names its party")
            if party is not None:
                self._get(Party, party, "party")
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
