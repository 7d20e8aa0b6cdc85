"""Demo data a newcomer can explore: a small Turkish company's CRM. Loading it twice records
nothing new: every command carries a fixed idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from domain import context
from domain.app import Business
from domain.core import Result

ACTOR = "demo-loader"


def load_demo(business: Business, today: date | None = None) -> int:
    """Record the demo data; returns how many commands recorded something new."""
    today = today or date.today()
    fresh = 0

    def run(key: str, decide: Callable[[], Result]) -> Result:
        nonlocal fresh
        ctx = context.CommandContext(
            actor=ACTOR,
            command_id=f"demo:{key}",
            idempotency_key=f"demo:{key}",
            fingerprint=f"demo:{key}",
        )
        with context.acting(ctx):
            result = decide()
        fresh += not result.replayed
        return result

    b = business
    leads = {
        "ayse": dict(
            name="Ayşe Yılmaz",
            company="Yılmaz Tekstil A.Ş.",
            email_address="ayse@yilmaztekstil.com.tr",
            phone="+90 212 555 01 01",
            source="web",
            campaign="SPRING26",
            owner="mehmet",
        ),
        "can": dict(
            name="Can Demir",
            company="Demir Makina Ltd. Şti.",
            email_address="can@demirmakina.com.tr",
            source="referral",
            owner="zeynep",
        ),
        "elif": dict(
            name="Elif Kaya",
            company="Kaya Gıda",
            email_address="elif@kayagida.com",
            source="fair",
            campaign="ISTANBUL-FAIR",
            owner="mehmet",
        ),
        "burak": dict(
            name="Burak Şahin",
            company="Şahin Lojistik",
            email_address="burak@sahinlojistik.com",
            source="web",
            campaign="SPRING26",
            owner="zeynep",
        ),
        "deniz": dict(
            name="Deniz Aksoy",
            email_address="deniz.aksoy@example.com",
            source="cold-call",
            owner="mehmet",
        ),
        "selin": dict(
            name="Selin Arslan",
            company="Arslan Mobilya",
            email_address="selin@arslanmobilya.com",
            source="fair",
            campaign="ISTANBUL-FAIR",
            owner="zeynep",
        ),
        "ayse-again": dict(
            name="Ayşe Yılmaz",
            company="Yılmaz Tekstil",
            email_address="AYSE@yilmaztekstil.com.tr",
            source="fair",
            campaign="ISTANBUL-FAIR",
            owner="zeynep",
        ),
    }
    ids: dict[str, UUID] = {}
    for key, fields in leads.items():
        ids[key] = run(f"lead:{key}", lambda f=fields: b.capture_lead(**f)).id  # type: ignore[misc]

    run("qualify:can", lambda: b.qualify_lead(ids["can"]))
    run("qualify:elif", lambda: b.qualify_lead(ids["elif"]))
    run("disqualify:deniz", lambda: b.disqualify_lead(ids["deniz"], "no budget this year"))

    ayse = run(
        "convert:ayse",
        lambda: b.convert_lead(
            ids["ayse"],
            opportunity_title="Yılmaz Tekstil — 2027 fabric supply",
            amount=Decimal("480000.00"),
            expected_close=today + timedelta(days=45),
            tax_number_value="1234567890",
            payment_terms_days=30,
            credit_limit=Decimal("250000.00"),
        ),
    )
    can = run(
        "convert:can",
        lambda: b.convert_lead(
            ids["can"],
            opportunity_title="Demir Makina — spare parts framework",
            amount=Decimal("125000.00"),
            expected_close=today + timedelta(days=20),
            tax_number_value="7340001237",
            payment_terms_days=45,
        ),
    )
    elif_ = run(
        "convert:elif",
        lambda: b.convert_lead(
            ids["elif"],
            opportunity_title="Kaya Gıda — packaging line",
            amount=Decimal("64000.00"),
            currency_code="EUR",
            expected_close=today + timedelta(days=75),
            tax_number_value="4567890128",
            payment_terms_days=60,
        ),
    )
    anadolu = run(
        "customer:anadolu",
        lambda: b.register_customer(
            name="Anadolu Yapı Market A.Ş.",
            tax_number_value="9876543217",
            tax_office="Kadıköy",
            email_address="satinalma@anadoluyapi.com.tr",
            phone="+90 216 555 22 33",
            addresses=[
                {
                    "kind": "billing",
                    "line1": "Bağdat Cad. No: 120",
                    "district": "Kadıköy",
                    "city": "İstanbul",
                    "postal_code": "34710",
                }
            ],
            contacts=[{"name": "Hakan Öz", "email": "hakan@anadoluyapi.com.tr", "role": "buyer"}],
            payment_terms_days=30,
            credit_limit=Decimal("500000.00"),
        ),
    )

    def opp_id(result: Result) -> UUID:
        return UUID(result.extra["opportunity_id"])

    run("stage:ayse", lambda: b.move_opportunity(opp_id(ayse), "proposal"))
    run("stage:can", lambda: b.move_opportunity(opp_id(can), "negotiation", Decimal(80)))
    run("win:can", lambda: b.win_opportunity(opp_id(can)))
    run("stage:elif", lambda: b.move_opportunity(opp_id(elif_), "qualification"))
    big = run(
        "opp:anadolu",
        lambda: b.open_opportunity(
            customer_id=anadolu.id,
            title="Anadolu Yapı — store fit-out",
            amount=Decimal("910000.00"),
            expected_close=today + timedelta(days=100),
            owner="zeynep",
            stage="proposal",
        ),
    )
    small = run(
        "opp:anadolu-small",
        lambda: b.open_opportunity(
            customer_id=anadolu.id,
            title="Anadolu Yapı — pilot order",
            amount=Decimal("38000.00"),
            expected_close=today + timedelta(days=10),
            owner="mehmet",
        ),
    )
    run("lose:anadolu-small", lambda: b.lose_opportunity(small.id, "price: competitor 12% lower"))

    run(
        "act:ayse-call",
        lambda: b.log_activity(
            kind="call",
            subject="Discovery call",
            regarding="opportunity",
            regarding_id=opp_id(ayse),
            owner="mehmet",
            done=True,
        ),
    )
    run(
        "act:ayse-proposal",
        lambda: b.log_activity(
            kind="task",
            subject="Send the revised proposal",
            regarding="opportunity",
            regarding_id=opp_id(ayse),
            due=today + timedelta(days=3),
            owner="mehmet",
        ),
    )
    run(
        "act:anadolu-meeting",
        lambda: b.log_activity(
            kind="meeting",
            subject="Site visit in Kadıköy",
            regarding="customer",
            regarding_id=anadolu.id,
            due=today + timedelta(days=7),
            owner="zeynep",
        ),
    )
    run(
        "act:big-note",
        lambda: b.log_activity(
            kind="note",
            subject="Decision in the board meeting next month",
            regarding="opportunity",
            regarding_id=big.id,
            owner="zeynep",
            done=True,
        ),
    )
    run(
        "act:selin-email",
        lambda: b.log_activity(
            kind="email",
            subject="Catalogue sent",
            regarding="lead",
            regarding_id=ids["selin"],
            owner="zeynep",
            done=True,
        ),
    )
    _order_to_cash(b, run, today, ayse.extra["customer_id"], anadolu.id)
    return fresh


def _order_to_cash(
    b: Business,
    run: Callable[[str, Callable[[], Result]], Result],
    today: date,
    yilmaz_id: str,
    anadolu_id: UUID,
) -> int:
    """Products, opening stock, a supplier receipt, and sales at every step from quote to cash."""
    yilmaz = UUID(yilmaz_id)
    products = [
        ("KMS-100", "Pamuklu kumaş (top)", "top", "1450.00", 20, "980.00", 21),
        ("IPL-20", "Polyester iplik (kg)", "kg", "86.50", 20, "58.00", 10),
        ("DGM-5", "Metal düğme (100 adet)", "paket", "120.00", 20, "70.00", 30),
        ("KTP-1", "Tekstil rehberi (kitap)", "adet", "240.00", 10, "150.00", 7),
        ("MNT-1", "Montaj ve kurulum hizmeti", "saat", "900.00", 20, "0", 0),
    ]
    for sku, name, unit, price, vat, cost, lead in products:
        run(
            f"product:{sku}",
            lambda s=sku, n=name, u=unit, p=price, v=vat, c=cost, t=lead: b.define_product(
                sku=s,
                name=n,
                unit=u,
                kind="service" if s == "MNT-1" else "stocked",
                list_price=Decimal(p),
                vat_rate_percent=Decimal(v),
                standard_cost=Decimal(c),
                lead_time_days=t,
            ),
        )
    run(
        "receipt:opening",
        lambda: b.receive_stock(
            receipt_date=today - timedelta(days=30),
            reference="Açılış sayımı",
            lines=[
                {"sku": "KMS-100", "quantity": 40, "unit_cost": "950.00"},
                {"sku": "IPL-20", "quantity": 500, "unit_cost": "55.00"},
                {"sku": "DGM-5", "quantity": 60, "unit_cost": "68.00"},
                {"sku": "KTP-1", "quantity": 25, "unit_cost": "150.00"},
            ],
        ),
    )
    supplier = run(
        "supplier:ege",
        lambda: b.register_customer(
            name="Ege İplik San. A.Ş.",
            tax_number_value="2468135797",
            payment_terms_days=45,
        ),
    )
    run(
        "receipt:ege",
        lambda: b.receive_stock(
            supplier_id=supplier.id,
            receipt_date=today - timedelta(days=12),
            reference="EGE-4471",
            lines=[
                {"sku": "KMS-100", "quantity": 30, "unit_cost": "1010.00"},
                {"sku": "IPL-20", "quantity": 300, "unit_cost": "59.50"},
            ],
        ),
    )
    # Yılmaz Tekstil: quoted, ordered, shipped, invoiced and partly paid.
    quote = run(
        "quote:yilmaz",
        lambda: b.create_quote(
            customer_id=yilmaz,
            lines=[
                {"sku": "KMS-100", "quantity": 50, "discount_percent": 5},
                {"sku": "DGM-5", "quantity": 20},
            ],
        ),
    )
    run("send:yilmaz", lambda: b.send_quote(quote.id))
    run("accept:yilmaz", lambda: b.accept_quote(quote.id))
    order = run("order:yilmaz", lambda: b.place_order(quote_id=quote.id))
    run("confirm:yilmaz", lambda: b.confirm_order(order.id))
    run("ship:yilmaz", lambda: b.ship_order(order.id))
    invoice = run("invoice:yilmaz", lambda: b.invoice_order(order.id))
    run(
        "pay:yilmaz",
        lambda: b.receive_payment(
            customer_id=yilmaz,
            amount=Decimal("50000.00"),
            method="bank",
            reference="EFT 88120",
            allocations=[{"invoice_id": invoice.id, "amount": Decimal("50000.00")}],
        ),
    )
    # Anadolu Yapı: an order straight from the catalogue, paid in full; a quote still open.
    direct = run(
        "order:anadolu",
        lambda: b.place_order(
            customer_id=anadolu_id,
            lines=[{"sku": "IPL-20", "quantity": 120}, {"sku": "MNT-1", "quantity": 6}],
        ),
    )
    run("confirm:anadolu", lambda: b.confirm_order(direct.id))
    run("ship:anadolu", lambda: b.ship_order(direct.id))
    paid = run("invoice:anadolu", lambda: b.invoice_order(direct.id))
    run(
        "pay:anadolu",
        lambda: b.receive_payment(
            customer_id=anadolu_id,
            amount=Decimal("19000.00"),
            method="cash",
            allocations=[{"invoice_id": paid.id, "amount": Decimal("18936.00")}],
        ),
    )
    open_quote = run(
        "quote:anadolu",
        lambda: b.create_quote(
            customer_id=anadolu_id,
            lines=[{"sku": "KTP-1", "quantity": 40}],
        ),
    )
    run("send:anadolu", lambda: b.send_quote(open_quote.id))
