"""Charts of accounts. The Turkish uniform chart (Tek Düzen Hesap Planı) is the default; a
small generic chart is the alternative. Posting rules name accounts by role, so the same
rules post to either chart."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


@dataclass(frozen=True)
class Account:
    code: str
    name: str
    kind: AccountKind
    contra: bool = False  # e.g. accumulated depreciation, sales returns: the opposite side

    @property
    def debit_normal(self) -> bool:
        natural = self.kind in (AccountKind.ASSET, AccountKind.EXPENSE)
        return natural != self.contra


@dataclass(frozen=True)
class Chart:
    name: str
    accounts: dict[str, Account]
    roles: dict[str, str]

    def __contains__(self, code: object) -> bool:
        return code in self.accounts

    def __getitem__(self, code: str) -> Account:
        return self.accounts[code]

    def role(self, role: str) -> str:
        return self.roles[role]


def _accounts(
    *rows: tuple[str, str, AccountKind] | tuple[str, str, AccountKind, bool],
) -> dict[str, Account]:
    return {row[0]: Account(*row) for row in rows}


A, L, E, IN, X = (
    AccountKind.ASSET,
    AccountKind.LIABILITY,
    AccountKind.EQUITY,
    AccountKind.INCOME,
    AccountKind.EXPENSE,
)

TDHP = Chart(
    name="tdhp",
    accounts=_accounts(
        ("100", "Kasa", A),
        ("101", "Alınan Çekler", A),
        ("102", "Bankalar", A),
        ("120", "Alıcılar", A),
        ("121", "Alacak Senetleri", A),
        ("150", "İlk Madde ve Malzeme", A),
        ("151", "Yarı Mamuller - Üretim", A),
        ("152", "Mamuller", A),
        ("153", "Ticari Mallar", A),
        ("159", "Verilen Sipariş Avansları", A),
        ("190", "Devreden KDV", A),
        ("191", "İndirilecek KDV", A),
        ("253", "Tesis, Makine ve Cihazlar", A),
        ("254", "Taşıtlar", A),
        ("255", "Demirbaşlar", A),
        ("257", "Birikmiş Amortismanlar", A, True),
        ("320", "Satıcılar", L),
        ("321", "Borç Senetleri", L),
        ("335", "Personele Borçlar", L),
        ("340", "Alınan Sipariş Avansları", L),
        ("360", "Ödenecek Vergi ve Fonlar", L),
        ("361", "Ödenecek Sosyal Güvenlik Kesintileri", L),
        ("391", "Hesaplanan KDV", L),
        ("500", "Sermaye", E),
        ("590", "Dönem Net Kârı", E),
        ("591", "Dönem Net Zararı", E, True),
        ("600", "Yurt İçi Satışlar", IN),
        ("601", "Yurt Dışı Satışlar", IN),
        ("610", "Satıştan İadeler", IN, True),
        ("611", "Satış İskontoları", IN, True),
        ("620", "Satılan Mamuller Maliyeti", X),
        ("621", "Satılan Ticari Mallar Maliyeti", X),
        ("622", "Satılan Hizmet Maliyeti", X),
        ("646", "Kambiyo Kârları", IN),
        ("656", "Kambiyo Zararları", X),
        ("710", "Direkt İlk Madde ve Malzeme Giderleri", X),
        ("720", "Direkt İşçilik Giderleri", X),
        ("730", "Genel Üretim Giderleri", X),
        ("760", "Pazarlama Satış ve Dağıtım Giderleri", X),
        ("770", "Genel Yönetim Giderleri", X),
        ("780", "Finansman Giderleri", X),
    ),
    roles={
        "cash": "100",
        "bank": "102",
        "receivables": "120",
        "inventory": "153",
        "input_vat": "191",
        "payables": "320",
        "customer_advances": "340",
        "output_vat": "391",
        "opening_equity": "500",
        "sales": "600",
        "cost_of_goods_sold": "621",
    },
)

GENERIC = Chart(
    name="generic",
    accounts=_accounts(
        ("1000", "Cash", A),
        ("1010", "Bank", A),
        ("1100", "Accounts receivable", A),
        ("1200", "Inventory", A),
        ("1300", "VAT receivable", A),
        ("2000", "Accounts payable", L),
        ("2100", "Customer advances", L),
        ("2200", "VAT payable", L),
        ("3000", "Owner's equity", E),
        ("4000", "Sales", IN),
        ("5000", "Cost of goods sold", X),
        ("6000", "Operating expenses", X),
    ),
    roles={
        "cash": "1000",
        "bank": "1010",
        "receivables": "1100",
        "inventory": "1200",
        "input_vat": "1300",
        "payables": "2000",
        "customer_advances": "2100",
        "output_vat": "2200",
        "opening_equity": "3000",
        "sales": "4000",
        "cost_of_goods_sold": "5000",
    },
)

CHARTS = {c.name: c for c in (TDHP, GENERIC)}
