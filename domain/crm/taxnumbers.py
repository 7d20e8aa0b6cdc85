"""Tax numbers: the Turkish VKN (10 digits, companies) and TCKN (11 digits, persons), with
their check digits. A tax number belongs to one party: the claim's id comes from the number."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import Entity, natural_id
from domain.errors import InvalidInput


def vkn_check_digit(first_nine: str) -> int:
    """The tenth digit of a VKN whose first nine digits are `first_nine`."""
    total = 0
    for i, c in enumerate(first_nine):
        tmp = (int(c) + 9 - i) % 10
        value = (tmp * 2 ** (9 - i)) % 9
        if tmp != 0 and value == 0:
            value = 9
        total += value
    return (10 - total % 10) % 10


def is_valid_vkn(number: str) -> bool:
    if len(number) != 10 or not number.isdigit():
        return False
    return vkn_check_digit(number[:9]) == int(number[9])


def is_valid_tckn(number: str) -> bool:
    if len(number) != 11 or not number.isdigit() or number[0] == "0":
        return False
    d = [int(c) for c in number]
    tenth = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    return tenth == d[9] and sum(d[:10]) % 10 == d[10]


def tax_number(field: str, value: str | None) -> str | None:
    number = (value or "").replace(" ", "")
    if not number:
        return None
    if len(number) == 10 and is_valid_vkn(number):
        return number
    if len(number) == 11 and is_valid_tckn(number):
        return number
    raise InvalidInput(
        field, "must be a valid VKN (10 digits) or TCKN (11 digits); the check digits do not match"
    )


def tax_number_claim_id(number: str) -> UUID:
    return natural_id("tax-number", number)


class TaxNumberClaim(Entity):
    class Claimed(Entity.Created):
        number: str
        party_id: UUID

        def apply(self, claim: TaxNumberClaim) -> None:
            claim.number = self.number
            claim.party_id = self.party_id

    if TYPE_CHECKING:
        number: str
        party_id: UUID

    @classmethod
    def claim(cls, number: str, party_id: UUID) -> TaxNumberClaim:
        claim: TaxNumberClaim = cls._create(
            cls.Claimed, id=tax_number_claim_id(number), number=number, party_id=party_id
        )
        return claim
