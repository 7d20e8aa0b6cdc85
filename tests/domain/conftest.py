"""The business in memory: commands run as a named person, and the events they recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain import context
from domain.app import Business
from domain.context import CommandContext
from domain.core import Result

# Valid tax numbers (their check digits match): VKN for companies, TCKN for persons.
VKN = "1234567890"
OTHER_VKN = "9876543217"
TCKN = "10000000146"


@pytest.fixture
def business() -> Business:
    return Business()


def run(command: Callable[..., Result], /, *args: Any, actor: str = "ayse", **kwargs: Any) -> Any:
    """Carry out one command as `actor`, with a command id of its own."""
    with context.acting(CommandContext(actor=actor)):
        return command(*args, **kwargs)


def head(business: Business) -> int:
    return business.recorder.max_notification_id() or 0


def recorded(business: Business, after: int = 0) -> list[Any]:
    """The events recorded after position `after`, in order."""
    notifications = business.recorder.select_notifications(start=after + 1, limit=10_000)
    return [business.mapper.to_domain_event(n) for n in notifications]


def names(events: list[Any]) -> list[str]:
    return [type(e).__qualname__ for e in events]
