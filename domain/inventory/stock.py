"""The stock of one product in one warehouse: FIFO layers, and what orders have reserved.

Stock never goes below zero, and reserved stock is not shipped to someone else."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from domain.base import Entity, SnapshotWithRows, snapshotted_id
from domain.errors import RuleViolation
from domain.inventory.fifo import Draw, Layer, cost_of, draw
from domain.values import ZERO

# A product's stock in a warehouse gains events with every receipt, reservation and
# shipment for as long as it is sold (thousands a year for a busy product): loaded from a
# snapshot taken every so many events. Its state stays small (open FIFO layers, open
# reservations).
STOCK_SNAPSHOT_INTERVAL = 200


def stock_id(product_id: UUID, warehouse: str) -> UUID:
    return snapshotted_id("stock", f"{product_id}/{warehouse}", STOCK_SNAPSHOT_INTERVAL)


class StockItem(Entity):
    class Snapshot(SnapshotWithRows):
        rows: ClassVar = {"layers": (Layer, None)}

    class Tracked(Entity.Created):
        product_id: UUID
        sku: str
        warehouse: str

        def apply(self, item: StockItem) -> None:
            item.product_id = self.product_id
            item.sku = self.sku
            item.warehouse = self.warehouse
            item.layers = []
            item.reservations = {}

    class Received(Entity.Event):
        document_id: UUID
        layer: str
        quantity: Decimal
        value: Decimal

        def apply(self, item: StockItem) -> None:
            item.layers.append(Layer(self.layer, self.quantity, self.value))

    class Issued(Entity.Event):
        document_id: UUID
        order_id: UUID | None
        quantity: Decimal
        draws: list[dict[str, Any]]
        cost: Decimal
        released: Decimal

        def apply(self, item: StockItem) -> None:
            taken = {d["layer"]: d for d in self.draws}
            layers = []
            for layer in item.layers:
                d = taken.get(layer.key)
                if d is not None:
                    layer = Layer(
                        layer.key, layer.quantity - d["quantity"], layer.value - d["value"]
                    )
                if layer.quantity > 0:
                    layers.append(layer)
            item.layers = layers
            if self.order_id is not None and self.released:
                item._release(self.order_id, self.released)

    class Reserved(Entity.Event):
        order_id: UUID
        quantity: Decimal

        def apply(self, item: StockItem) -> None:
            key = str(self.order_id)
            item.reservations[key] = item.reservations.get(key, ZERO) + self.quantity

    class Released(Entity.Event):
        order_id: UUID
        quantity: Decimal

        def apply(self, item: StockItem) -> None:
            item._release(self.order_id, self.quantity)

    if TYPE_CHECKING:
        product_id: UUID
        sku: str
        warehouse: str
        layers: list[Layer]
        reservations: dict[str, Decimal]

    @classmethod
    def track(cls, product_id: UUID, sku: str, warehouse: str) -> StockItem:
        item: StockItem = cls._create(
            cls.Tracked,
            id=stock_id(product_id, warehouse),
            product_id=product_id,
            sku=sku,
            warehouse=warehouse,
        )
        return item

    @property
    def on_hand(self) -> Decimal:
        return sum((layer.quantity for layer in self.layers), ZERO)

    @property
    def value(self) -> Decimal:
        return sum((layer.value for layer in self.layers), ZERO)

    @property
    def reserved(self) -> Decimal:
        return sum(self.reservations.values(), ZERO)

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved

    def reserved_for(self, order_id: UUID) -> Decimal:
        return self.reservations.get(str(order_id), ZERO)

    def receive(self, document_id: UUID, line: int, quantity: Decimal, value: Decimal) -> None:
        self.trigger_event(
            self.Received,
            document_id=document_id,
            layer=f"{document_id}/{line}",
            quantity=quantity,
            value=value,
        )

    def issue(self, document_id: UUID, quantity: Decimal, order_id: UUID | None = None) -> Decimal:
        """Take `quantity` out at FIFO cost (decided now, recorded in the event); returns the
        cost. Only what is on hand and not reserved for other orders can be taken."""
        mine = self.reserved_for(order_id) if order_id is not None else ZERO
        free = self.on_hand - (self.reserved - mine)
        if quantity > free:
            raise RuleViolation(
                f"cannot ship {quantity} of {self.sku} from {self.warehouse}: "
                f"only {max(free, ZERO)} available (on hand {self.on_hand}, "
                f"reserved for other orders {self.reserved - mine})"
            )
        draws, shortfall = draw(self.layers, quantity)
        assert shortfall == 0, "free stock is never more than the layers hold"
        cost = cost_of(draws)
        self.trigger_event(
            self.Issued,
            document_id=document_id,
            order_id=order_id,
            quantity=quantity,
            draws=[_draw_dict(d) for d in draws],
            cost=cost,
            released=min(mine, quantity),
        )
        return cost

    def reserve(self, order_id: UUID, quantity: Decimal) -> Decimal:
        """Reserve up to `quantity` for an order; returns what could be reserved."""
        quantity = min(quantity, max(self.available, ZERO))
        if quantity > 0:
            self.trigger_event(self.Reserved, order_id=order_id, quantity=quantity)
        return quantity

    def release(self, order_id: UUID) -> Decimal:
        held = self.reserved_for(order_id)
        if held > 0:
            self.trigger_event(self.Released, order_id=order_id, quantity=held)
        return held

    def _release(self, order_id: UUID, quantity: Decimal) -> None:
        key = str(order_id)
        left = self.reservations.get(key, ZERO) - quantity
        if left > 0:
            self.reservations[key] = left
        else:
            self.reservations.pop(key, None)


def _draw_dict(d: Draw) -> dict[str, Any]:
    return {"layer": d.layer, "quantity": d.quantity, "value": d.value}
