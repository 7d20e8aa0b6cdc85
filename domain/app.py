"""`Business`: the one eventsourcing Application holding every aggregate of the company, so
that there is one events table and one notification log with one total order."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.billing.service import BillingCommands
from domain.crm.service import CrmCommands
from domain.ids import FastUUIDAsHex
from domain.ledger.service import LedgerCommands
from domain.sales.service import SalesCommands
from domain.settings import Settings, store_env


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class Business(CrmCommands, BillingCommands, SalesCommands, LedgerCommands):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(FastUUIDAsHex())  # the same `uuid_hex`, read back faster


def open_business(
    settings: Settings | None = None, *, create_tables: bool = False, **env: Any
) -> Business:
    settings = settings or Settings.from_env()
    return Business(env={**store_env(settings.database_url, create_tables=create_tables), **env})
