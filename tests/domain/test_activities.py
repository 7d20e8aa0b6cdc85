"""Activities are logged against a lead, a customer or an opportunity that exists, and a task
is completed once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest

from domain.app import Business
from domain.crm.activities import Activity, ActivityKind, Regarding
from domain.errors import InvalidInput, NotFound, RuleViolation
from tests.domain.conftest import head, run

UNKNOWN = UUID("00000000-0000-4000-8000-000000000003")


@pytest.fixture
def targets(business: Business) -> dict[str, UUID]:
    lead = run(business.capture_lead, name="Selin Arslan").id
    customer = run(business.register_customer, name="Arslan Mobilya").id
    opportunity = run(
        business.open_opportunity, customer_id=customer, title="Showroom", amount=Decimal(1)
    ).id
    return {"lead": lead, "customer": customer, "opportunity": opportunity}


@pytest.mark.parametrize("regarding", ["lead", "customer", "opportunity"])
def test_an_activity_is_logged_against_a_lead_customer_or_opportunity(
    business: Business, targets: dict[str, UUID], regarding: str
) -> None:
    result = run(
        business.log_activity,
        kind="meeting",
        subject="Site visit",
        regarding=regarding,
        regarding_id=targets[regarding],
        due=date(2027, 1, 15),
        actor="zeynep",
    )

    activity: Activity = business.repository.get(result.id)
    assert activity.kind is ActivityKind.MEETING
    assert activity.regarding is Regarding(regarding)
    assert activity.regarding_id == targets[regarding]
    assert activity.due == date(2027, 1, 15)
    assert activity.owner == "zeynep"
    assert activity.done is False


@pytest.mark.parametrize("regarding", ["lead", "customer", "opportunity"])
def test_an_activity_against_an_unknown_target_is_not_found(
    business: Business, targets: dict[str, UUID], regarding: str
) -> None:
    before = head(business)

    with pytest.raises(NotFound, match=f"{regarding} {UNKNOWN} does not exist"):
        run(
            business.log_activity,
            kind="call",
            subject="Call",
            regarding=regarding,
            regarding_id=UNKNOWN,
        )

    assert head(business) == before


def test_an_activity_against_a_target_of_another_kind_is_not_found(
    business: Business, targets: dict[str, UUID]
) -> None:
    with pytest.raises(NotFound) as missing:
        run(
            business.log_activity,
            kind="call",
            subject="Call",
            regarding="opportunity",
            regarding_id=targets["lead"],
        )

    assert missing.value.kind == "opportunity"


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"kind": "fax"}, "kind"), ({"regarding": "invoice"}, "regarding"),
     ({"subject": ""}, "subject"), ({"notes": "x" * 5001}, "notes")],
    ids=["kind", "regarding", "subject", "notes"],
)  # fmt: skip
def test_an_activity_with_an_invalid_field_is_rejected_naming_it(
    business: Business, targets: dict[str, UUID], fields: dict[str, str], field: str
) -> None:
    before = head(business)
    command = {
        "kind": "call",
        "subject": "Call",
        "regarding": "lead",
        "regarding_id": targets["lead"],
        **fields,
    }

    with pytest.raises(InvalidInput) as rejected:
        run(business.log_activity, **command)

    assert rejected.value.field == field
    assert head(business) == before


def test_an_open_task_is_completed_once(business: Business, targets: dict[str, UUID]) -> None:
    task = run(
        business.log_activity,
        kind="task",
        subject="Send the proposal",
        regarding="customer",
        regarding_id=targets["customer"],
    ).id

    completed = run(business.complete_activity, task)
    before = head(business)

    assert completed.version == 2
    assert business.repository.get(task).done is True
    with pytest.raises(RuleViolation, match=f"activity {task} is already done"):
        run(business.complete_activity, task)
    assert head(business) == before


def test_an_activity_logged_as_done_cannot_be_completed(
    business: Business, targets: dict[str, UUID]
) -> None:
    note = run(
        business.log_activity,
        kind="note",
        subject="Catalogue sent",
        regarding="lead",
        regarding_id=targets["lead"],
        done=True,
    ).id

    with pytest.raises(RuleViolation, match="already done"):
        run(business.complete_activity, note)


def test_an_unknown_activity_cannot_be_completed(business: Business) -> None:
    with pytest.raises(NotFound, match=f"activity {UNKNOWN} does not exist"):
        run(business.complete_activity, UNKNOWN)
