"""FIFO valuation, as pure functions shared by the stock aggregate (which decides) and the
quote view (which previews). A layer keeps its remaining value in money, so that issuing the
last unit of a layer takes exactly what is left of it: the stock value always equals the
inventory account to the cent."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.values import ZERO, round_money


@dataclass(frozen=True)
class Layer:
    key: str
    quantity: Decimal
    value: Decimal

    @property
    def unit_cost(self) -> Decimal:
        return self.value / self.quantity if self.quantity else ZERO


@dataclass(frozen=True)
class Draw:
    layer: str
    quantity: Decimal
    value: Decimal


def draw(layers: list[Layer], quantity: Decimal) -> tuple[list[Draw], Decimal]:
    """Take `quantity` from the oldest layers first. Returns what was drawn from each layer
    and the shortfall (zero when the layers held enough)."""
    draws: list[Draw] = []
    wanted = quantity
    for layer in layers:
        if wanted <= 0:
            break
        if layer.quantity <= 0:
            continue
        take = min(layer.quantity, wanted)
        value = (
            layer.value
            if take == layer.quantity
            else min(round_money(take * layer.value / layer.quantity), layer.value)
        )
        draws.append(Draw(layer.key, take, value))
        wanted -= take
    return draws, max(wanted, ZERO)


def cost_of(draws: list[Draw]) -> Decimal:
    return sum((d.value for d in draws), ZERO)
