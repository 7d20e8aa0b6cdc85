"""Drill-down: which events made a report's figures.

An explanation maps each figure of a report, by its JSON pointer into the answer
(`/accounts/2/balance`), to the read-model rows behind it: for each row, the position of the
event that set its amount, that event's name, and the amount it adds. The amounts of a
figure's contributions add up exactly to the figure (a count's contributions are 1 each), so
an auditor can follow any number back to the store without the report re-reading it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any


def event_name(event_class: type) -> str:
    """An event as the store names it after the module: `JournalEntry.Posted`."""
    return event_class.__qualname__


@dataclass(frozen=True, slots=True)
class Contribution:
    position: int
    event: str
    amount: Decimal | int

    def negated(self) -> Contribution:
        return Contribution(self.position, self.event, -self.amount)

    def one(self) -> Contribution:
        return Contribution(self.position, self.event, 1)

    def as_dict(self) -> dict[str, Any]:
        # abs: a zero is never "-0.00"
        amount = abs(self.amount) if self.amount == 0 else self.amount
        return {"position": self.position, "event": self.event, "amount": str(amount)}


def negated(contributions: Iterable[Contribution]) -> list[Contribution]:
    return [c.negated() for c in contributions]


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) to a place in the answer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Explanation:
    """The contributions of the figures of one answer, collected while the report is built.
    With `only` (a JSON pointer), just the figures at or under it are kept: a drill-down into
    one number need not carry every other one."""

    def __init__(self, only: str | None = None) -> None:
        self.only = only
        self.figures: dict[str, list[Contribution]] = {}

    def wants(self, path: str) -> bool:
        only = self.only
        return only is None or path == only or path.startswith(only + "/")

    def add(self, path: str, contributions: Iterable[Contribution]) -> None:
        """Explain the figure at `path` (an iterable is only consumed if the figure is
        wanted, so a costly one can be passed lazily)."""
        if self.wants(path):
            self.figures[path] = list(contributions)

    def count(self, path: str, contributions: Iterable[Contribution]) -> None:
        """Explain a count: each row counted contributes 1."""
        if self.wants(path):
            self.figures[path] = [c.one() for c in contributions]

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            path: [c.as_dict() for c in sorted(found, key=_by_position)]
            for path, found in self.figures.items()
        }

    def attach(self, answer: dict[str, Any]) -> dict[str, Any]:
        answer["explain"] = self.as_dict()
        return answer


def _by_position(c: Contribution) -> int:
    return c.position


def attach(answer: dict[str, Any], explanation: Explanation | None) -> dict[str, Any]:
    """The answer, with its explanation when one was asked for (and unchanged otherwise)."""
    return answer if explanation is None else explanation.attach(answer)


def running_balances(
    x: Explanation,
    paths: Iterable[str],
    opening: Sequence[Contribution],
    rows: Sequence[Contribution],
) -> None:
    """Explain running balances: the n-th path is the opening plus the first n + 1 lines
    (`rows` holds each line's contribution, already signed as its figure is shown)."""
    everything = [*opening, *rows]
    for n, path in enumerate(paths):
        x.add(path, islice(everything, len(opening) + n + 1))
