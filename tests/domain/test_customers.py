"""Customers: a tax number must carry valid check digits and belongs to one party only, even
when two clerks register it at the same moment."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from domain.app import Business
from domain.crm.parties import Party, PartyRole
from domain.crm.taxnumbers import TaxNumberClaim
from domain.errors import InvalidInput, RuleViolation
from tests.domain.conftest import OTHER_VKN, TCKN, VKN, head, names, recorded, run


def test_a_customer_is_registered_with_its_terms_addresses_and_contacts(
    business: Business,
) -> None:
    result = run(
        business.register_customer,
        name="Anadolu Yapı Market A.Ş.",
        tax_number_value=VKN,
        tax_office="Kadıköy",
        email_address="Satinalma@AnadoluYapi.com.tr",
        addresses=[{"line1": "Bağdat Cad. No: 120", "city": "İstanbul", "country": "tr"}],
        contacts=[{"name": "Hakan Öz", "role": "buyer"}],
        payment_terms_days=45,
        credit_limit=Decimal("500000.00"),
        currency_code="EUR",
    )

    party: Party = business.repository.get(result.id)
    assert party.roles == {PartyRole.CUSTOMER}
    assert party.tax_number == VKN
    assert party.email == "satinalma@anadoluyapi.com.tr"
    assert party.addresses == [
        {
            "kind": "billing",
            "line1": "Bağdat Cad. No: 120",
            "line2": None,
            "district": None,
            "city": "İstanbul",
            "postal_code": None,
            "country": "TR",
        }
    ]
    assert party.contacts == [{"name": "Hakan Öz", "email": None, "phone": None, "role": "buyer"}]
    assert party.payment_terms_days == 45
    assert party.credit_limit == Decimal("500000.00")
    assert party.currency == "EUR"
    assert names(recorded(business)) == [
        "Party.Registered",
        "TaxNumberClaim.Claimed",
        "EmailIndex.Registered",
    ]


@pytest.mark.parametrize("number", [VKN, OTHER_VKN, TCKN, "123 456 7890"])
def test_a_tax_number_with_matching_check_digits_is_accepted(
    business: Business, number: str
) -> None:
    result = run(business.register_customer, name="Kaya Gıda", tax_number_value=number)

    party: Party = business.repository.get(result.id)
    assert party.tax_number == number.replace(" ", "")


@pytest.mark.parametrize(
    "number",
    ["1234567891", "10000000147", "01000000146", "123456789", "123456789012", "12345abcde"],
    ids=["VKN check digit", "TCKN check digit", "TCKN leading zero", "9 digits", "12 digits",
         "letters"],
)  # fmt: skip
def test_a_tax_number_whose_check_digits_do_not_match_is_invalid_input(
    business: Business, number: str
) -> None:
    with pytest.raises(InvalidInput) as rejected:
        run(business.register_customer, name="Kaya Gıda", tax_number_value=number)

    assert rejected.value.field == "tax_number"
    assert head(business) == 0


def test_a_tax_number_belongs_to_one_customer_only(business: Business) -> None:
    first = run(business.register_customer, name="Demir Makina", tax_number_value=VKN)
    before = head(business)

    with pytest.raises(
        RuleViolation, match=f"tax number {VKN} already belongs to party {first.id}"
    ):
        run(
            business.register_customer, name="Demir Makina (again)", tax_number_value="123 4567 890"
        )

    assert head(business) == before


def test_a_lead_cannot_be_converted_with_a_tax_number_another_customer_has(
    business: Business,
) -> None:
    run(business.register_customer, name="Demir Makina", tax_number_value=VKN)
    lead_id = run(business.capture_lead, name="Can Demir", company="Demir Makina").id
    before = head(business)

    with pytest.raises(RuleViolation, match=f"tax number {VKN} already belongs"):
        run(business.convert_lead, lead_id, tax_number_value=VKN)

    assert head(business) == before


class ClerkWhoLooksTooEarly(Business):
    """Misses the next tax-number claim it looks up, as if another clerk saved it between our
    look-up and our save."""

    misses = 0

    def _find(self, cls: type, aggregate_id: UUID):  # type: ignore[no-untyped-def]
        if cls is TaxNumberClaim and self.misses:
            self.misses -= 1
            return None
        return super()._find(cls, aggregate_id)


def test_two_customers_registered_at_once_with_one_tax_number_cannot_both_have_it() -> None:
    business = ClerkWhoLooksTooEarly()
    run(business.register_customer, name="Demir Makina", tax_number_value=VKN)
    before = head(business)
    business.misses = 1

    with pytest.raises(RuleViolation, match=f"tax number {VKN} already belongs"):
        run(business.register_customer, name="Demir Makina (again)", tax_number_value=VKN)

    assert business.misses == 0  # the first attempt did miss the claim: the store refused it
    assert head(business) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"email_address": "satinalma"}, "email"),
        ({"currency_code": "TL"}, "currency"),
        ({"currency_code": "try"}, "currency"),
        ({"credit_limit": Decimal("-1")}, "credit_limit"),
        ({"credit_limit": Decimal("0.001")}, "credit_limit"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"payment_terms_days": 3651}, "payment_terms_days"),
        ({"addresses": [{"line1": "Bağdat Cad."}]}, "addresses[0].city"),
        ({"contacts": [{"name": "Hakan", "email": "hakan"}]}, "contacts[0].email"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_customer_with_an_invalid_field_is_rejected_naming_it(
    business: Business, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as rejected:
        run(business.register_customer, **{"name": "Kaya Gıda", **fields})

    assert rejected.value.field == field
    assert head(business) == 0
