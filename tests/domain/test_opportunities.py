"""Opportunities: each open stage has a default probability that a salesperson may override,
and a deal is closed once, by winning or losing it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest

from domain.app import Business
from domain.crm.opportunities import Opportunity, Stage
from domain.crm.parties import PartyRole
from domain.errors import InvalidInput, NotFound, RuleViolation
from tests.domain.conftest import head, names, recorded, run


@pytest.fixture
def customer(business: Business) -> UUID:
    return run(business.register_customer, name="Anadolu Yapı").id


def open_deal(business: Business, customer: UUID, **fields: object) -> UUID:
    fields = {"title": "Store fit-out", "amount": Decimal("910000.00"), **fields}
    return run(business.open_opportunity, customer_id=customer, **fields).id


def deal(business: Business, opportunity_id: UUID) -> Opportunity:
    return business.repository.get(opportunity_id)


def test_an_opportunity_opens_in_prospecting_at_ten_percent(
    business: Business, customer: UUID
) -> None:
    opportunity_id = open_deal(business, customer, expected_close=date(2027, 2, 28))

    opened = deal(business, opportunity_id)
    assert opened.stage is Stage.PROSPECTING
    assert opened.probability == Decimal(10)
    assert opened.amount == Decimal("910000.00")
    assert opened.currency == "TRY"
    assert opened.expected_close == date(2027, 2, 28)
    assert opened.owner == "ayse"


@pytest.mark.parametrize(
    ("stage", "probability"),
    [("prospecting", 10), ("qualification", 20), ("proposal", 50), ("negotiation", 75)],
)
def test_each_open_stage_has_its_default_probability(
    business: Business, customer: UUID, stage: str, probability: int
) -> None:
    opened_there = open_deal(business, customer, stage=stage)
    moved_there = open_deal(business, customer, stage="prospecting" if stage != "prospecting"
                            else "qualification")  # fmt: skip

    run(business.move_opportunity, moved_there, stage)

    assert deal(business, opened_there).probability == Decimal(probability)
    assert deal(business, moved_there).stage == Stage(stage)
    assert deal(business, moved_there).probability == Decimal(probability)


def test_a_salesperson_may_override_the_probability_when_opening_and_moving(
    business: Business, customer: UUID
) -> None:
    opportunity_id = open_deal(business, customer, stage="proposal", probability=Decimal(35))
    assert deal(business, opportunity_id).probability == Decimal(35)

    run(business.move_opportunity, opportunity_id, "negotiation", Decimal("82.5"))

    assert deal(business, opportunity_id).stage is Stage.NEGOTIATION
    assert deal(business, opportunity_id).probability == Decimal("82.5")
    changed = recorded(business)[-1]
    assert type(changed).__qualname__ == "Opportunity.StageChanged"
    assert (changed.stage, changed.probability) == ("negotiation", Decimal("82.5"))


def test_moving_back_to_the_default_probability_of_the_same_stage_is_a_change(
    business: Business, customer: UUID
) -> None:
    opportunity_id = open_deal(business, customer, stage="proposal", probability=Decimal(35))

    run(business.move_opportunity, opportunity_id, "proposal")

    assert deal(business, opportunity_id).probability == Decimal(50)


def test_moving_to_the_stage_and_probability_it_has_records_nothing(
    business: Business, customer: UUID
) -> None:
    opportunity_id = open_deal(business, customer, stage="proposal")
    before = head(business)

    result = run(business.move_opportunity, opportunity_id, "proposal", Decimal(50))

    assert result.version == 1
    assert head(business) == before


@pytest.mark.parametrize("probability", [Decimal("-0.01"), Decimal("100.01")])
def test_a_probability_outside_zero_to_a_hundred_is_invalid(
    business: Business, customer: UUID, probability: Decimal
) -> None:
    opportunity_id = open_deal(business, customer)
    before = head(business)

    with pytest.raises(InvalidInput) as rejected:
        run(business.move_opportunity, opportunity_id, "proposal", probability)
    with pytest.raises(InvalidInput) as rejected_at_opening:
        open_deal(business, customer, probability=probability)

    assert rejected.value.field == "probability"
    assert rejected_at_opening.value.field == "probability"
    assert head(business) == before


def test_a_probability_finer_than_the_read_models_keep_is_invalid(
    business: Business, customer: UUID
) -> None:
    # Known bug (domain/values.py, percent): any number of decimal places is accepted, but the
    # opportunities read model keeps four. The API refuses more since this suite, yet a command
    # from elsewhere (CLI, import, scheduler) records 33.33333 and the runner then cannot write
    # the row. Rejecting it (or rounding it in the command) fixes this; adapt the test to the
    # choice.
    before = head(business)

    with pytest.raises(InvalidInput) as rejected:
        open_deal(business, customer, probability=Decimal("33.33333"))

    assert rejected.value.field == "probability"
    assert head(business) == before


@pytest.mark.parametrize("stage", ["won", "lost", "closed"])
def test_a_stage_change_only_goes_to_an_open_stage(
    business: Business, customer: UUID, stage: str
) -> None:
    opportunity_id = open_deal(business, customer)

    with pytest.raises(InvalidInput, match="use /win or /lose to close") as rejected:
        run(business.move_opportunity, opportunity_id, stage)

    assert rejected.value.field == "stage"
    assert deal(business, opportunity_id).stage is Stage.PROSPECTING


def test_winning_an_open_opportunity_makes_it_certain(business: Business, customer: UUID) -> None:
    opportunity_id = open_deal(business, customer, stage="negotiation")

    result = run(business.win_opportunity, opportunity_id)

    assert result.version == 2
    assert deal(business, opportunity_id).stage is Stage.WON
    assert deal(business, opportunity_id).probability == Decimal(100)


def test_losing_an_open_opportunity_records_why(business: Business, customer: UUID) -> None:
    opportunity_id = open_deal(business, customer)

    run(business.lose_opportunity, opportunity_id, " price: competitor 12% lower ")

    assert deal(business, opportunity_id).stage is Stage.LOST
    assert deal(business, opportunity_id).probability == Decimal(0)
    assert recorded(business)[-1].reason == "price: competitor 12% lower"


@pytest.mark.parametrize(
    ("close", "then"),
    [("win", "win"), ("win", "lose"), ("lose", "win"), ("lose", "lose"), ("win", "move"),
     ("lose", "move")],
)  # fmt: skip
def test_a_closed_opportunity_cannot_be_won_lost_or_moved(
    business: Business, customer: UUID, close: str, then: str
) -> None:
    opportunity_id = open_deal(business, customer)
    closing = {
        "win": lambda: run(business.win_opportunity, opportunity_id),
        "lose": lambda: run(business.lose_opportunity, opportunity_id, "budget cut"),
        "move": lambda: run(business.move_opportunity, opportunity_id, "proposal"),
    }
    closing[close]()
    before = head(business)
    closed_as = "won" if close == "win" else "lost"

    with pytest.raises(RuleViolation, match=f"it is already {closed_as}"):
        closing[then]()

    assert head(business) == before
    assert deal(business, opportunity_id).stage == Stage(closed_as)


def test_a_lost_opportunity_is_not_lost_without_a_reason(
    business: Business, customer: UUID
) -> None:
    opportunity_id = open_deal(business, customer)

    with pytest.raises(InvalidInput) as rejected:
        run(business.lose_opportunity, opportunity_id, "")

    assert rejected.value.field == "reason"
    assert deal(business, opportunity_id).stage is Stage.PROSPECTING


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": " "}, "title"),
        ({"amount": Decimal("-0.01")}, "amount"),
        ({"amount": Decimal("10.001")}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency_code": "EURO"}, "currency"),
        ({"stage": "won"}, "stage"),
    ],
    ids=["blank title", "negative amount", "fractions of a cent", "not a number",
         "bad currency", "closed stage"],
)  # fmt: skip
def test_an_opportunity_with_an_invalid_field_is_rejected_naming_it(
    business: Business, customer: UUID, fields: dict[str, object], field: str
) -> None:
    before = head(business)

    with pytest.raises(InvalidInput) as rejected:
        open_deal(business, customer, **fields)

    assert rejected.value.field == field
    assert head(business) == before


def test_an_absurdly_large_amount_is_invalid_input_not_a_crash(
    business: Business, customer: UUID
) -> None:
    # Quantizing 1E+400 to cents raises decimal.InvalidOperation, which was an HTTP 500.
    with pytest.raises(InvalidInput) as rejected:
        open_deal(business, customer, amount=Decimal("1E+400"))

    assert rejected.value.field == "amount"


def test_an_opportunity_needs_a_customer_that_exists(business: Business) -> None:
    unknown = UUID("00000000-0000-4000-8000-000000000002")

    with pytest.raises(NotFound, match=f"customer {unknown} does not exist"):
        open_deal(business, unknown)


def test_an_opportunity_is_not_opened_for_a_supplier(business: Business) -> None:
    supplier = run(business.register_customer, name="Şahin Lojistik", roles={PartyRole.SUPPLIER}).id
    before = head(business)

    with pytest.raises(RuleViolation, match=f"party {supplier} is not a customer"):
        open_deal(business, supplier)

    assert head(business) == before


def test_a_whole_deal_is_recorded_as_its_steps(business: Business, customer: UUID) -> None:
    before = head(business)
    opportunity_id = open_deal(business, customer)
    run(business.move_opportunity, opportunity_id, "qualification")
    run(business.move_opportunity, opportunity_id, "proposal", Decimal(60))
    run(business.win_opportunity, opportunity_id)

    events = recorded(business, before)
    assert names(events) == [
        "Opportunity.Opened",
        "Opportunity.StageChanged",
        "Opportunity.StageChanged",
        "Opportunity.Won",
    ]
    assert [e.originator_version for e in events] == [1, 2, 3, 4]
