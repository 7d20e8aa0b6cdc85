from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import or_, select

from api.deps import CommandDep, Reader, read_model, require
from api.routers.activities import ActivityPublic
from api.routers.opportunities import OpportunityPublic
from api.schemas import Body, CommandAnswer, Money, Page, PageParams, Public, paginate
from domain.errors import NotFound

router = APIRouter(prefix="/api/customers", tags=["customers"])

WRITERS = ("sales", "finance")
READERS = ("sales", "finance", "manager", "auditor", "warehouse")


class Address(Body):
    kind: str = Field("billing", examples=["billing", "shipping"])
    line1: str
    line2: str | None = None
    district: str | None = None
    city: str
    postal_code: str | None = None
    country: str = "TR"


class Contact(Body):
    name: str
    email: str | None = None
    phone: str | None = None
    role: str | None = None


class CustomerCreate(Body):
    name: str = Field(examples=["Anadolu Gıda Ltd. Şti."])
    kind: str | None = Field(
        None, description="company or person; by default from the tax number (TCKN: person)"
    )
    tax_number: str | None = Field(None, description="VKN (10 digits) or TCKN (11 digits)")
    tax_office: str | None = None
    email: str | None = None
    phone: str | None = None
    addresses: list[Address] = []
    contacts: list[Contact] = []
    payment_terms_days: int = Field(30, ge=0, le=3650)
    credit_limit: Money = Decimal(0)
    currency: str = "TRY"


class CustomerPublic(Public):
    id: UUID
    name: str
    kind: str
    roles: list[str]
    tax_number: str | None
    tax_office: str | None
    email: str | None
    phone: str | None
    addresses: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    payment_terms_days: int
    credit_limit: Decimal
    currency: str
    lead_id: UUID | None
    registered_at: datetime
    version: int


class CustomerDetail(CustomerPublic):
    opportunities: list[OpportunityPublic]
    activities: list[ActivityPublic]


def _public(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["roles"] = [r for r in ("customer", "supplier") if data.pop(f"is_{r}")]
    return data


@router.post("", status_code=201, response_model=CommandAnswer, dependencies=[require(*WRITERS)])
async def register_customer(body: CustomerCreate, run: CommandDep) -> Any:
    return await run(
        lambda b: b.register_customer(
            name=body.name,
            kind=body.kind,
            tax_number_value=body.tax_number,
            tax_office=body.tax_office,
            email_address=body.email,
            phone=body.phone,
            addresses=[a.model_dump() for a in body.addresses],
            contacts=[c.model_dump() for c in body.contacts],
            payment_terms_days=body.payment_terms_days,
            credit_limit=body.credit_limit,
            currency_code=body.currency,
        )
    )


@router.get("", response_model=Page[CustomerPublic], dependencies=[require(*READERS)])
def list_customers(
    r: Annotated[Reader, read_model("customers")],
    page: Annotated[PageParams, Query()],
    q: Annotated[str | None, Query(description="part of the name, e-mail or tax number")] = None,
    tax_number: str | None = None,
) -> Any:
    parties = r["customers"]["parties"]
    query = select(parties).where(parties.c.is_customer == 1).order_by(parties.c.name, parties.c.id)
    if tax_number:
        query = query.where(parties.c.tax_number == tax_number)
    if q:
        # Case is folded by the database (ilike), not by str.lower(): Python lowers "İ" to
        # "i" plus a combining dot, which no stored name contains. % and _ are literal here.
        query = query.where(
            or_(
                parties.c.name.icontains(q, autoescape=True),
                parties.c.email.icontains(q, autoescape=True),
                parties.c.tax_number.contains(q, autoescape=True),
            )
        )
    return paginate(r.conn, query, CustomerPublic, page.limit, page.offset, shape=_public)


@router.get(
    "/{customer_id}",
    response_model=CustomerDetail,
    dependencies=[require(*READERS)],
)
def get_customer(
    customer_id: UUID,
    r: Annotated[Reader, read_model("customers", "opportunities", "activities")],
) -> Any:
    """A customer with its opportunities and the activities logged against it or them."""
    parties = r["customers"]["parties"]
    row = r.conn.execute(select(parties).where(parties.c.id == customer_id)).mappings().first()
    if row is None or not row["is_customer"]:
        raise NotFound("customer", customer_id)
    opps = r["opportunities"]["opportunities"]
    opportunities = (
        r.conn.execute(
            select(opps).where(opps.c.customer_id == customer_id).order_by(opps.c.opened_at)
        )
        .mappings()
        .all()
    )
    acts = r["activities"]["activities"]
    about = [customer_id, *(o["id"] for o in opportunities)]
    activities = (
        r.conn.execute(
            select(acts).where(acts.c.regarding_id.in_(about)).order_by(acts.c.logged_at)
        )
        .mappings()
        .all()
    )
    return CustomerDetail.model_validate(
        {
            **_public(row),
            "opportunities": [dict(o) for o in opportunities],
            "activities": [dict(a) for a in activities],
        }
    )
