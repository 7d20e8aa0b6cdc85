"""Stock per product and warehouse: on hand, reserved, available and FIFO value; the FIFO
layers still holding goods; every receipt and issue (the stock card); and the receipts.

Other modules rely on `items` and `layers` (docs/decisions/0003-order-to-cash.md): the quote
view previews FIFO cost from `layers`, reconciliation sums `items.value`. A used-up layer is
kept with quantity and value zero (the history of what was received stays readable); readers
take the layers with a quantity above zero, oldest `seq` first.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    func,
    select,
    type_coerce,
)

from domain.inventory.fifo import Layer
from domain.inventory.receipts import StockReceipt
from domain.inventory.stock import StockItem
from domain.values import ZERO
from projections.engine import Batch, Projection
from projections.explain import Contribution, Explanation, attach, event_name, negated, pointer
from projections.types import Amount, Quantity, UtcDateTime, made_once

TRACKED = event_name(StockItem.Tracked)
# The event of a movement, by its kind.
MOVED_BY = {"receipt": event_name(StockItem.Received), "issue": event_name(StockItem.Issued)}


NIL = Decimal("0.00")


class Stock(Projection):
    name = "stock"
    version = 2
    handles = (
        StockItem.Tracked,
        StockItem.Received,
        StockItem.Issued,
        StockItem.Reserved,
        StockItem.Released,
        StockReceipt.Recorded,
    )

    def define_tables(self) -> None:
        self.table(
            "items",
            Column("product_id", Uuid, primary_key=True),
            Column("warehouse", String(20), primary_key=True),
            Column("sku", String(40), nullable=False, index=True),
            Column("on_hand", Quantity(), nullable=False),
            Column("reserved", Quantity(), nullable=False),
            Column("available", Quantity(), nullable=False),
            Column("value", Amount(), nullable=False),
            Column("item_id", Uuid, nullable=False, unique=True),
            Column("version", Integer, nullable=False),
            Column("position", Integer, nullable=False),
            Column("tracked_position", Integer, nullable=False),
        )
        # The stock events name only their aggregate (the StockItem): this finds its row.
        self.table(
            "item_ids",
            Column("item_id", Uuid, primary_key=True),
            Column("product_id", Uuid, nullable=False),
            Column("warehouse", String(20), nullable=False),
        )
        layers = self.table(
            "layers",
            Column("product_id", Uuid, primary_key=True),
            Column("warehouse", String(20), primary_key=True),
            Column("layer", String(80), primary_key=True),
            Column("seq", Integer, nullable=False),
            Column("document_id", Uuid, nullable=False),
            Column("received_at", UtcDateTime, nullable=False),
            Column("received_quantity", Quantity(), nullable=False),
            Column("received_value", Amount(), nullable=False),
            Column("quantity", Quantity(), nullable=False),
            Column("value", Amount(), nullable=False),
        )
        Index(f"{layers.name}_fifo", layers.c.product_id, layers.c.warehouse, layers.c.seq)
        movements = self.table(
            "movements",
            Column("position", Integer, primary_key=True),
            Column("product_id", Uuid, nullable=False),
            Column("warehouse", String(20), nullable=False),
            Column("sku", String(40), nullable=False),
            Column("kind", String(10), nullable=False),
            Column("document_id", Uuid, nullable=False, index=True),
            Column("order_id", Uuid, index=True),
            # Signed: receipts add, issues take away.
            Column("quantity", Quantity(), nullable=False),
            Column("value", Amount(), nullable=False),
            Column("on_hand_after", Quantity(), nullable=False),
            Column("value_after", Amount(), nullable=False),
            Column("at", UtcDateTime, nullable=False),
        )
        Index(
            f"{movements.name}_card",
            movements.c.product_id,
            movements.c.warehouse,
            movements.c.position,
        )
        # What changed `items.reserved`, signed: reservations add, releases and the part of
        # an issue that used a reservation take away (`movements` does the same for on hand).
        reservations = self.table(
            "reservations",
            Column("position", Integer, primary_key=True),
            Column("product_id", Uuid, nullable=False),
            Column("warehouse", String(20), nullable=False),
            Column("event", String(40), nullable=False),
            Column("order_id", Uuid),
            Column("quantity", Quantity(), nullable=False),
        )
        Index(
            f"{reservations.name}_item",
            reservations.c.product_id,
            reservations.c.warehouse,
            reservations.c.position,
        )
        self.table(
            "receipts",
            Column("id", Uuid, primary_key=True),
            Column("number", String(20), nullable=False, unique=True),
            Column("warehouse", String(20), nullable=False, index=True),
            Column("supplier_id", Uuid, index=True),
            Column("receipt_date", Date, nullable=False, index=True),
            Column("reference", String(100)),
            Column("total", Amount(), nullable=False),
            Column("lines", JSON, nullable=False),
            Column("recorded_at", UtcDateTime, nullable=False),
            Column("position", Integer, nullable=False),
        )

    def handle(self, event: Any, position: int, batch: Batch) -> None:
        if isinstance(event, StockReceipt.Recorded):
            self._receipt(event, position, batch)
            return
        items, layers = self["items"], self["layers"]
        if isinstance(event, StockItem.Tracked):
            batch.insert(
                self["item_ids"],
                item_id=event.originator_id,
                product_id=event.product_id,
                warehouse=event.warehouse,
            )
            batch.insert(
                items,
                product_id=event.product_id,
                warehouse=event.warehouse,
                sku=event.sku,
                on_hand=ZERO,
                reserved=ZERO,
                available=ZERO,
                value=ZERO,
                item_id=event.originator_id,
                version=event.originator_version,
                position=position,
                tracked_position=position,
            )
            return
        ids = batch.get(self["item_ids"], event.originator_id)
        if ids is None:
            return
        key = (ids["product_id"], ids["warehouse"])
        item = batch.get(items, key)
        assert item is not None, "an item row is written with its id row"
        on_hand, reserved, value = item["on_hand"], item["reserved"], item["value"]
        match event:
            case StockItem.Received():
                batch.insert(
                    layers,
                    product_id=key[0],
                    warehouse=key[1],
                    layer=event.layer,
                    seq=event.originator_version,
                    document_id=event.document_id,
                    received_at=event.timestamp,
                    received_quantity=event.quantity,
                    received_value=event.value,
                    quantity=event.quantity,
                    value=event.value,
                )
                on_hand += event.quantity
                value += event.value
                self._movement(batch, event, position, item, "receipt", on_hand, value)
            case StockItem.Issued():
                for d in event.draws:
                    layer = batch.get(layers, (*key, d["layer"]))
                    if layer is not None:
                        batch.update(
                            layers,
                            (*key, d["layer"]),
                            quantity=layer["quantity"] - d["quantity"],
                            value=layer["value"] - d["value"],
                        )
                on_hand -= event.quantity
                value -= event.cost
                if event.order_id is not None:
                    reserved -= event.released
                    self._reservation(batch, event, position, key, -event.released)
                self._movement(batch, event, position, item, "issue", on_hand, value)
            case StockItem.Reserved():
                reserved += event.quantity
                self._reservation(batch, event, position, key, event.quantity)
            case StockItem.Released():
                reserved -= event.quantity
                self._reservation(batch, event, position, key, -event.quantity)
        batch.update(
            items,
            key,
            on_hand=on_hand,
            reserved=reserved,
            available=on_hand - reserved,
            value=value,
            version=event.originator_version,
            position=position,
        )

    def _movement(
        self,
        batch: Batch,
        event: Any,
        position: int,
        item: dict[str, Any],
        kind: str,
        on_hand: Decimal,
        value: Decimal,
    ) -> None:
        issued = kind == "issue"
        batch.append(
            self["movements"],
            position=position,
            product_id=item["product_id"],
            warehouse=item["warehouse"],
            sku=item["sku"],
            kind=kind,
            document_id=event.document_id,
            order_id=event.order_id if issued else None,
            quantity=-event.quantity if issued else event.quantity,
            value=-event.cost if issued else event.value,
            on_hand_after=on_hand,
            value_after=value,
            at=event.timestamp,
        )

    def _reservation(
        self, batch: Batch, event: Any, position: int, key: tuple[Any, str], quantity: Decimal
    ) -> None:
        if quantity:
            batch.append(
                self["reservations"],
                position=position,
                product_id=key[0],
                warehouse=key[1],
                event=event_name(type(event)),
                order_id=event.order_id,
                quantity=quantity,
            )

    def _receipt(self, event: Any, position: int, batch: Batch) -> None:
        batch.insert(
            self["receipts"],
            id=event.originator_id,
            number=event.number,
            warehouse=event.warehouse,
            supplier_id=event.supplier_id,
            receipt_date=event.receipt_date,
            reference=event.reference,
            total=event.total,
            lines=[
                {
                    "line": d["line"],
                    "product_id": str(d["product_id"]),
                    "sku": d["sku"],
                    "quantity": str(d["quantity"]),
                    "unit_cost": str(d["unit_cost"]),
                    "value": str(d["value"]),
                }
                for d in event.lines
            ],
            recorded_at=event.timestamp,
            position=position,
        )

    # -- queries ----------------------------------------------------------------------------

    def fifo_layers(self, conn: Connection, product_id: Any, warehouse: str) -> list[Layer]:
        """The layers of one product in one warehouse still holding goods, oldest first."""
        layers = self["layers"]
        rows = conn.execute(
            select(layers.c.layer, layers.c.quantity, layers.c.value)
            .where(
                layers.c.product_id == product_id,
                layers.c.warehouse == warehouse,
                layers.c.quantity > 0,
            )
            .order_by(layers.c.seq)
        ).all()
        return [Layer(r.layer, r.quantity, r.value) for r in rows]

    def report(
        self,
        conn: Connection,
        products: Table,
        *,
        warehouse: str | None = None,
        product_id: Any = None,
        explain: Explanation | None = None,
        up_to: int | None = None,
    ) -> dict[str, Any]:
        """Per product and warehouse: on hand, reserved, available and FIFO value (names from
        the products read model); the value per warehouse and in total. Quantities are not
        added across products: their units differ. With `up_to`, as they stood at that
        position: the items tracked by then, their movements and reservations up to it
        added up (each is a row with its position, never changed: decision 0019)."""
        shape = (products, warehouse is not None, product_id is not None, up_to is not None)
        query = made_once(self.metadata, "report", shape, lambda: self._report_query(*shape))
        params = {"warehouse": warehouse, "product": product_id, "up_to": up_to}
        result = conn.execute(query, params)
        names = list(result.keys())  # (a dict per row from plain tuples: no RowMapping each)
        rows = [dict(zip(names, row, strict=True)) for row in result.all()]
        by_warehouse: dict[str, Decimal] = {}
        for row in rows:
            by_warehouse[row["warehouse"]] = by_warehouse.get(row["warehouse"], NIL) + row["value"]
        answer = {
            "items": rows,
            "by_warehouse": [{"warehouse": w, "value": v} for w, v in sorted(by_warehouse.items())],
            "totals": {"items": len(rows), "value": sum(by_warehouse.values(), NIL)},
        }
        if explain is not None:
            self._explain(explain, conn, answer, warehouse, product_id, up_to)
        return attach(answer, explain)

    def _report_query(
        self, products: Table, of_warehouse: bool, of_product: bool, posted: bool = False
    ) -> Any:
        """The items with their products' names, of a `warehouse` and a `product` (parameters)
        where asked; `posted`, as of the position `up_to` (a parameter): the items tracked by
        then, with the figures of `_posted_figures`."""
        items = self["items"]
        source = items.outerjoin(products, products.c.id == items.c.product_id)
        if posted:
            figures, source = self._posted_figures(source)
        else:
            figures = [items.c.on_hand, items.c.reserved, items.c.available, items.c.value]
        query = (
            select(
                items.c.product_id,
                items.c.sku,
                products.c.name,
                products.c.unit,
                items.c.warehouse,
                *figures,
            )
            .select_from(source)
            .order_by(items.c.sku, items.c.warehouse)
        )
        if posted:
            query = query.where(items.c.tracked_position <= bindparam("up_to", type_=Integer))
        if of_warehouse:
            query = query.where(items.c.warehouse == bindparam("warehouse"))
        if of_product:
            query = query.where(items.c.product_id == bindparam("product"))
        return query

    def _posted_figures(self, source: Any) -> tuple[list[Any], Any]:
        """On hand and value as the sums of each item's movements up to the position
        `up_to`, reserved as the sum of its reservations up to it, available the difference;
        and `source` joined to those sums."""
        items, movements, reservations = self["items"], self["movements"], self["reservations"]
        up_to = bindparam("up_to", type_=Integer)

        def per_item(table: Table, **sums: Any) -> Any:
            return (
                select(
                    table.c.product_id,
                    table.c.warehouse,
                    *(func.sum(column).label(name) for name, column in sums.items()),
                )
                .where(table.c.position <= up_to)
                .group_by(table.c.product_id, table.c.warehouse)
                .subquery()
            )

        moved = per_item(movements, on_hand=movements.c.quantity, value=movements.c.value)
        held = per_item(reservations, reserved=reservations.c.quantity)
        for sub in (moved, held):
            source = source.outerjoin(
                sub,
                and_(sub.c.product_id == items.c.product_id, sub.c.warehouse == items.c.warehouse),
            )
        on_hand = type_coerce(func.coalesce(moved.c.on_hand, 0), Quantity())
        reserved = type_coerce(func.coalesce(held.c.reserved, 0), Quantity())
        figures = [
            on_hand.label("on_hand"),
            reserved.label("reserved"),
            type_coerce(on_hand - reserved, Quantity()).label("available"),
            type_coerce(func.coalesce(moved.c.value, 0), Amount()).label("value"),
        ]
        return figures, source

    def _explain(
        self,
        x: Explanation,
        conn: Connection,
        answer: dict[str, Any],
        warehouse: str | None,
        product_id: Any,
        up_to: int | None = None,
    ) -> None:
        """On hand and value by the movements (receipts add, issues take away), reserved by
        the reservations, each per item; an item is counted by the event that tracked it."""
        items, movements, reservations = self["items"], self["movements"], self["reservations"]

        def shown(table: Table, *columns: Any) -> list[Any]:
            query = select(table.c.product_id, table.c.warehouse, *columns)
            if up_to is not None:
                at = table.c.tracked_position if table is items else table.c.position
                query = query.where(at <= up_to)
            if warehouse is not None:
                query = query.where(table.c.warehouse == warehouse)
            if product_id is not None:
                query = query.where(table.c.product_id == product_id)
            return list(conn.execute(query).all())

        moved: dict[tuple[Any, str], tuple[list[Contribution], list[Contribution]]] = {}
        for pid, wh, position, kind, quantity, value in shown(
            movements,
            movements.c.position,
            movements.c.kind,
            movements.c.quantity,
            movements.c.value,
        ):
            quantities, values = moved.setdefault((pid, wh), ([], []))
            quantities.append(Contribution(position, MOVED_BY[kind], quantity))
            values.append(Contribution(position, MOVED_BY[kind], value))
        held: dict[tuple[Any, str], list[Contribution]] = {}
        for pid, wh, position, event, quantity in shown(
            reservations, reservations.c.position, reservations.c.event, reservations.c.quantity
        ):
            held.setdefault((pid, wh), []).append(Contribution(position, event, quantity))
        tracked = {
            (pid, wh): Contribution(position, TRACKED, 1)
            for pid, wh, position in shown(items, items.c.tracked_position)
        }

        per_warehouse: dict[str, list[Contribution]] = {}
        for i, row in enumerate(answer["items"]):
            key = (row["product_id"], row["warehouse"])
            quantities, values = moved.get(key, ([], []))
            reserved = held.get(key, [])
            x.add(pointer("items", i, "on_hand"), quantities)
            x.add(pointer("items", i, "reserved"), reserved)
            x.add(pointer("items", i, "available"), [*quantities, *negated(reserved)])
            x.add(pointer("items", i, "value"), values)
            per_warehouse.setdefault(row["warehouse"], []).extend(values)
        for i, row in enumerate(answer["by_warehouse"]):
            x.add(pointer("by_warehouse", i, "value"), per_warehouse[row["warehouse"]])
        keys = [(row["product_id"], row["warehouse"]) for row in answer["items"]]
        x.count("/totals/items", [tracked[k] for k in keys])
        x.add("/totals/value", [v for values in per_warehouse.values() for v in values])
