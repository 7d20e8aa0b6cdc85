"""Inventory commands: define products, open warehouses, receive stock."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.core import Core, Result, command
from domain.crm.parties import Party, PartyRole
from domain.errors import InvalidInput, RuleViolation
from domain.inventory.products import Product, ProductKind, normalise_sku, product_id_for, vat_rate
from domain.inventory.receipts import StockReceipt
from domain.inventory.stock import StockItem, stock_id
from domain.inventory.warehouses import MAIN, Warehouse, warehouse_code, warehouse_id
from domain.ledger.postings import receipt_entry
from domain.sales.pricing import quantity as parse_quantity
from domain.values import ZERO, not_negative, optional_text, required_text, round_money


class InventoryCommands(Core):
    def ensure_defaults(self) -> None:
        """What exists from the start: the MAIN warehouse."""
        if self._find(Warehouse, warehouse_id(MAIN)) is None:
            self.open_warehouse(code=MAIN, name="Main warehouse")

    @command
    def define_product(
        self,
        *,
        sku: str,
        name: str,
        unit: str = "adet",
        kind: str = ProductKind.STOCKED.value,
        list_price: Decimal = ZERO,
        vat_rate_percent: Decimal = Decimal(20),
        standard_cost: Decimal = ZERO,
        lead_time_days: int = 0,
    ) -> Result:
        code = normalise_sku(required_text("sku", sku, max_length=40))
        existing = self._find(Product, product_id_for(code))
        if existing is not None:
            raise RuleViolation(f"SKU {code} already exists (product {existing.id})")
        try:
            product_kind = ProductKind(kind)
        except ValueError:
            raise InvalidInput("kind", "must be 'stocked' or 'service'") from None
        if lead_time_days < 0 or lead_time_days > 3650:
            raise InvalidInput("lead_time_days", "must be between 0 and 3650")
        product = Product.define(
            sku=code,
            name=required_text("name", name),
            unit=required_text("unit", unit, max_length=20),
            kind=product_kind,
            list_price=_price("list_price", list_price),
            vat_rate=vat_rate("vat_rate", vat_rate_percent),
            standard_cost=_price("standard_cost", standard_cost),
            lead_time_days=lead_time_days,
        )
        return self._save(product)

    @command
    def open_warehouse(self, *, code: str, name: str) -> Result:
        normalised = warehouse_code("code", code)
        if self._find(Warehouse, warehouse_id(normalised)) is not None:
            raise RuleViolation(f"warehouse {normalised} already exists")
        warehouse = Warehouse.open(normalised, required_text("name", name))
        return self._save(warehouse)

    @command
    def receive_stock(
        self,
        *,
        lines: list[dict[str, Any]],
        warehouse: str | None = None,
        supplier_id: UUID | None = None,
        receipt_date: date | None = None,
        reference: str | None = None,
    ) -> Result:
        """Count goods into a warehouse: each line becomes a FIFO layer at its unit cost. From a
        supplier it posts Dr inventory / Cr payables; without one it is opening stock, posted
        against opening equity."""
        code = warehouse_code("warehouse", warehouse)
        self._get(Warehouse, warehouse_id(code), "warehouse")
        if supplier_id is not None:
            supplier = self._get(Party, supplier_id, "supplier")
            supplier.add_role(PartyRole.SUPPLIER)
        else:
            supplier = None
        if not lines:
            raise InvalidInput("lines", "a receipt needs at least one line")
        receipt_id = uuid.uuid4()
        day = receipt_date or self.today()
        items: dict[UUID, StockItem] = {}
        recorded: list[dict[str, Any]] = []
        total = ZERO
        for i, line in enumerate(lines, start=1):
            field = f"lines[{i - 1}]"
            product = self._product(field, line)
            if not product.is_stocked:
                raise RuleViolation(f"{product.sku} is a service: it is not kept in stock")
            qty = parse_quantity(f"{field}.quantity", line.get("quantity"))
            unit_cost = _price(f"{field}.unit_cost", line.get("unit_cost"))
            value = round_money(qty * unit_cost)
            key = stock_id(product.id, code)
            item = items.get(key) or self._find(StockItem, key)
            if item is None:
                item = StockItem.track(product.id, product.sku, code)
            items[key] = item
            item.receive(receipt_id, i, qty, value)
            total += value
            recorded.append(
                {
                    "line": i,
                    "product_id": product.id,
                    "sku": product.sku,
                    "quantity": qty,
                    "unit_cost": unit_cost,
                    "value": value,
                }
            )
        series = self._series("GRS", day.year)
        number = series.issue(receipt_id)
        receipt = StockReceipt.record(
            receipt_id=receipt_id,
            number=number,
            warehouse=code,
            supplier_id=supplier_id,
            receipt_date=day,
            reference=optional_text("reference", reference, max_length=100),
            lines=recorded,
            total=total,
        )
        entry = (
            receipt_entry(
                self.chart,
                receipt,
                number=number,
                receipt_date=day,
                total=total,
                supplier_id=supplier_id,
            )
            if total
            else None
        )
        return self._save(receipt, series, supplier, entry, *items.values(), number=number)

    def _product(self, field: str, line: dict[str, Any]) -> Product:
        """A line names its product by `product_id` or by `sku`."""
        product_id = line.get("product_id")
        sku = line.get("sku")
        if product_id is None and not sku:
            raise InvalidInput(f"{field}.product_id", "give the product's id or its sku")
        if product_id is None:
            key = product_id_for(str(sku))
        else:
            key = (
                product_id
                if isinstance(product_id, UUID)
                else _uuid(f"{field}.product_id", product_id)
            )
        return self._get(Product, key, "product")


def _price(field: str, value: object) -> Decimal:
    amount = not_negative(field, value if value is not None else ZERO)
    if amount != amount.quantize(Decimal("0.000001")):
        raise InvalidInput(field, "must have at most six decimal places")
    return amount


def _uuid(field: str, value: object) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not an id") from None
