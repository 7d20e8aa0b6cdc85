"""What every command does, whatever it is about: its events say who acted and why, a repeat of
an idempotency key answers as the first time did, If-Match guards against lost updates, and a
rejected command records nothing at all."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest

from domain import context
from domain.app import Business
from domain.context import CommandContext
from domain.core import Result
from domain.crm.leads import LeadStatus
from domain.errors import (
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    RuleViolation,
    VersionMismatch,
)
from tests.domain.conftest import VKN, head, recorded, run

META_KEYS = {"actor", "command_id", "correlation_id", "causation_id"}


def as_(actor: str = "ayse", **fields: object) -> context.CommandContext:
    return CommandContext(actor=actor, **fields)  # type: ignore[arg-type]


def lead_status(business: Business, lead_id: UUID) -> LeadStatus:
    return business.repository.get(lead_id).status


# -- metadata --------------------------------------------------------------------------------


def test_every_event_of_a_working_day_says_who_acted_and_in_which_command(
    business: Business,
) -> None:
    lead: list[UUID] = []
    steps: list[tuple[str, Callable[[], object]]] = [
        ("mehmet", lambda: lead.append(business.capture_lead(name="A", email_address="a@y.c").id)),
        ("zeynep", lambda: business.qualify_lead(lead[0])),
        ("zeynep", lambda: business.convert_lead(lead[0], tax_number_value=VKN)),
        ("mehmet", lambda: business.register_customer(name="Anadolu", email_address="s@a.com")),
        ("ali", lambda: business.capture_lead(name="A again", email_address="A@Y.c")),
    ]  # fmt: skip
    commands = []
    for actor, step in steps:
        with context.acting(as_(actor)) as ctx:
            step()
        commands.append((ctx.command_id, actor))

    events = recorded(business)
    assert len(events) == 2 + 1 + 5 + 2 + 2
    for event in events:
        assert set(event.meta) == META_KEYS, type(event).__qualname__
        assert all(event.meta.values()), event.meta
    # Each command's events carry its own id and its own actor, in the order the commands ran.
    runs: list[tuple[str, str]] = []
    for event in events:
        pair = (event.meta["command_id"], event.meta["actor"])
        if not runs or runs[-1] != pair:
            runs.append(pair)
    assert runs == commands


def test_a_command_without_a_correlation_is_its_own_correlation_and_cause(
    business: Business,
) -> None:
    with context.acting(as_("ayse", command_id="cmd-1")):
        business.capture_lead(name="Ali")

    assert recorded(business)[0].meta == {
        "actor": "ayse",
        "command_id": "cmd-1",
        "correlation_id": "cmd-1",
        "causation_id": "cmd-1",
    }


def test_a_command_caused_by_another_carries_the_correlation_and_cause(
    business: Business,
) -> None:
    ctx = as_("system:scheduler", command_id="cmd-2", correlation_id="req-7", causation_id="ev-9")
    with context.acting(ctx):
        business.capture_lead(name="Ali")

    assert recorded(business)[0].meta == {
        "actor": "system:scheduler",
        "command_id": "cmd-2",
        "correlation_id": "req-7",
        "causation_id": "ev-9",
    }


def test_the_context_is_gone_after_the_command(business: Business) -> None:
    with context.acting(as_("ayse")):
        pass

    assert context.current().actor == "system"


# -- idempotency -----------------------------------------------------------------------------


def test_repeating_an_idempotency_key_answers_as_the_first_time_and_records_nothing(
    business: Business,
) -> None:
    ctx = as_("ayse", idempotency_key="form-42", fingerprint="POST /api/leads {Ali}")
    with context.acting(ctx):
        first = business.capture_lead(name="Ali", email_address="ali@example.com")
    after_first = head(business)

    with context.acting(ctx):
        repeat = business.capture_lead(name="Ali", email_address="ali@example.com")

    assert first.replayed is False
    assert repeat.replayed is True
    assert (repeat.id, repeat.version, repeat.extra) == (first.id, first.version, first.extra)
    assert head(business) == after_first
    assert [type(e).__qualname__ for e in recorded(business)] == [
        "Lead.Captured",
        "EmailIndex.Registered",
        "CommandRecord.Recorded",
    ]


def test_repeating_a_conversion_answers_with_the_same_customer_and_opportunity(
    business: Business,
) -> None:
    lead_id = run(business.capture_lead, name="Ali", company="Veli Döküm")
    ctx = as_("ayse", idempotency_key="convert-1", fingerprint="f")
    with context.acting(ctx):
        first = business.convert_lead(lead_id.id)
    after_first = head(business)

    with context.acting(ctx):
        repeat = business.convert_lead(lead_id.id)

    assert repeat.replayed is True
    assert repeat.extra == first.extra
    assert set(repeat.extra) == {"customer_id", "opportunity_id"}
    assert head(business) == after_first


def test_the_same_key_with_another_request_is_refused_and_records_nothing(
    business: Business,
) -> None:
    with context.acting(as_("ayse", idempotency_key="form-42", fingerprint="Ali")):
        business.capture_lead(name="Ali")
    before = head(business)

    with (
        pytest.raises(IdempotencyKeyReused, match="'form-42' was already used"),
        context.acting(as_("ayse", idempotency_key="form-42", fingerprint="Veli")),
    ):
        business.capture_lead(name="Veli")

    assert head(business) == before


def test_idempotency_keys_are_kept_apart_per_caller(business: Business) -> None:
    with context.acting(as_("ayse", idempotency_key="form-42", fingerprint="Ali")):
        ayses = business.capture_lead(name="Ali")

    with context.acting(as_("mehmet", idempotency_key="form-42", fingerprint="Ali")):
        mehmets = business.capture_lead(name="Ali")

    assert mehmets.replayed is False
    assert mehmets.id != ayses.id


def test_a_rejected_command_does_not_use_up_its_idempotency_key(business: Business) -> None:
    lead_id = run(business.capture_lead, name="Ali").id
    run(business.disqualify_lead, lead_id, "no budget")
    other = run(business.capture_lead, name="Veli").id
    ctx = as_("ayse", idempotency_key="qualify-1", fingerprint="f")

    with pytest.raises(RuleViolation), context.acting(ctx):
        business.qualify_lead(lead_id)
    with context.acting(with_fingerprint(ctx, "other")):
        result = business.qualify_lead(other)

    assert result.replayed is False
    assert lead_status(business, other) is LeadStatus.QUALIFIED


def with_fingerprint(ctx: CommandContext, fingerprint: str) -> CommandContext:
    return CommandContext(
        actor=ctx.actor, idempotency_key=ctx.idempotency_key, fingerprint=fingerprint
    )


# -- If-Match --------------------------------------------------------------------------------


def test_a_command_expecting_an_older_version_is_refused_and_records_nothing(
    business: Business,
) -> None:
    lead_id = run(business.capture_lead, name="Ali").id
    run(business.qualify_lead, lead_id)
    before = head(business)

    with pytest.raises(VersionMismatch) as mismatch, context.acting(as_(expected_version=1)):
        business.disqualify_lead(lead_id, "seen version 1 only")

    assert (mismatch.value.expected, mismatch.value.actual) == (1, 2)
    assert str(mismatch.value) == "expected version 1, but the current version is 2"
    assert head(business) == before
    assert lead_status(business, lead_id) is LeadStatus.QUALIFIED


def test_a_command_expecting_the_current_version_goes_through(business: Business) -> None:
    lead_id = run(business.capture_lead, name="Ali").id

    with context.acting(as_(expected_version=1)):
        result = business.qualify_lead(lead_id)

    assert result.version == 2


# -- nothing recorded on rejection -----------------------------------------------------------


@pytest.fixture
def crm(business: Business) -> dict[str, UUID]:
    """A small CRM: a converted lead, a new one, a customer with a tax number, a won deal."""
    converted = run(business.capture_lead, name="Ali", company="Veli Döküm")
    conversion = run(business.convert_lead, converted.id)
    customer = run(business.register_customer, name="Demir Makina", tax_number_value=VKN)
    won = run(business.open_opportunity, customer_id=customer.id, title="Parts", amount=Decimal(5))
    run(business.win_opportunity, won.id)
    task = run(
        business.log_activity, kind="task", subject="Call", regarding="customer",
        regarding_id=customer.id, done=True,
    )  # fmt: skip
    return {
        "converted lead": converted.id,
        "new lead": run(business.capture_lead, name="Can").id,
        "customer": customer.id,
        "opportunity": UUID(conversion.extra["opportunity_id"]),
        "won": won.id,
        "done task": task.id,
    }


UNKNOWN = UUID("00000000-0000-4000-8000-000000000004")

REJECTED: dict[str, tuple[type[DomainError], Callable[[Business, dict[str, UUID]], Result]]] = {
    "qualify a converted lead": (RuleViolation, lambda b, x: b.qualify_lead(x["converted lead"])),
    "convert into an unknown customer": (
        NotFound,
        lambda b, x: b.convert_lead(x["new lead"], customer_id=UNKNOWN),
    ),
    "convert with a taken tax number": (
        RuleViolation,
        lambda b, x: b.convert_lead(x["new lead"], tax_number_value=VKN),
    ),
    "convert with a bad opportunity currency": (
        InvalidInput,
        lambda b, x: b.convert_lead(x["new lead"], currency_code="TL"),
    ),
    "register a taken tax number": (
        RuleViolation,
        lambda b, x: b.register_customer(name="Copy", tax_number_value=VKN),
    ),
    "win a won deal": (RuleViolation, lambda b, x: b.win_opportunity(x["won"])),
    "lose a won deal": (RuleViolation, lambda b, x: b.lose_opportunity(x["won"], "late")),
    "move to a closed stage": (
        InvalidInput,
        lambda b, x: b.move_opportunity(x["opportunity"], "won"),
    ),
    "open for an unknown customer": (
        NotFound,
        lambda b, x: b.open_opportunity(customer_id=UNKNOWN, title="T", amount=Decimal(1)),
    ),
    "log against an unknown lead": (
        NotFound,
        lambda b, x: b.log_activity(
            kind="call", subject="S", regarding="lead", regarding_id=UNKNOWN
        ),
    ),
    "complete a done task": (RuleViolation, lambda b, x: b.complete_activity(x["done task"])),
}


@pytest.mark.parametrize("attempt", list(REJECTED))
def test_a_rejected_command_records_nothing(
    business: Business, crm: dict[str, UUID], attempt: str
) -> None:
    error, command = REJECTED[attempt]
    before = business.recorder.max_notification_id()

    with pytest.raises(error), context.acting(as_("ayse")):
        command(business, crm)

    assert business.recorder.max_notification_id() == before
    assert lead_status(business, crm["new lead"]) is LeadStatus.NEW
