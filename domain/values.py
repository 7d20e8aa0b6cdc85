"""Money, quantities and codes: Decimal everywhere, half-up rounding to two places per line."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from domain.errors import InvalidInput

CENT = Decimal("0.01")
LIMIT = Decimal("1e12")  # read models keep amounts as scaled 64-bit integers: room to sum
ZERO = Decimal("0")
FUNCTIONAL_CURRENCY = "TRY"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(field: str, value: object) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidInput(field, f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise InvalidInput(field, "must be a finite number")
    if abs(amount) >= LIMIT:
        raise InvalidInput(field, "is too large (at most 12 digits before the decimal point)")
    return amount


def positive(field: str, value: object) -> Decimal:
    amount = to_decimal(field, value)
    if amount <= 0:
        raise InvalidInput(field, "must be greater than zero")
    return amount


def not_negative(field: str, value: object) -> Decimal:
    amount = to_decimal(field, value)
    if amount < 0:
        raise InvalidInput(field, "must not be negative")
    return amount


def money(field: str, value: object, *, allow_zero: bool = True) -> Decimal:
    """An amount of money: not negative (or positive), at most two decimals, kept at two."""
    amount = not_negative(field, value) if allow_zero else positive(field, value)
    if amount != round_money(amount):
        raise InvalidInput(field, "must have at most two decimal places")
    return round_money(amount)


def currency(field: str, code: str) -> str:
    if not _CURRENCY.match(code or ""):
        raise InvalidInput(field, "must be a three-letter ISO 4217 code such as TRY or EUR")
    return code


def required_text(field: str, value: str | None, *, max_length: int = 200) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return text


def optional_text(field: str, value: str | None, *, max_length: int = 200) -> str | None:
    text = (value or "").strip()
    if len(text) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return text or None


def email(field: str, value: str | None) -> str | None:
    text = (value or "").strip().lower()
    if not text:
        return None
    if not _EMAIL.match(text) or len(text) > 254:
        raise InvalidInput(field, f"{value!r} is not an e-mail address")
    return text


def percent(field: str, value: object) -> Decimal:
    amount = to_decimal(field, value)
    if amount < 0 or amount > 100:
        raise InvalidInput(field, "must be between 0 and 100")
    if amount != amount.quantize(Decimal("0.0001")):
        raise InvalidInput(field, "must have at most four decimal places")
    return amount
