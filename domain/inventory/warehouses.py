"""Warehouses, known by a short code. MAIN exists from the start."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity, natural_id
from domain.errors import InvalidInput

MAIN = "MAIN"
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")


def warehouse_code(field: str, code: str | None) -> str:
    normalised = (code or MAIN).strip().upper()
    if not _CODE.match(normalised):
        raise InvalidInput(field, "a warehouse code is 1-20 letters, digits, '-' or '_'")
    return normalised


def warehouse_id(code: str) -> UUID:
    return natural_id("warehouse", code.upper())


class Warehouse(Entity):
    class Opened(Entity.Created):
        code: str
        name: str

        def apply(self, warehouse: Warehouse) -> None:
            warehouse.code = self.code
            warehouse.name = self.name

    if TYPE_CHECKING:
        code: str
        name: str

    @classmethod
    def open(cls, code: str, name: str) -> Warehouse:
        warehouse: Warehouse = cls._create(cls.Opened, id=warehouse_id(code), code=code, name=name)
        return warehouse
