"""Domain types of a validated settlement (SPEC §3).

Built once at the edge (``service.validation``) from a validated event; detectors see only
these frozen values, never a raw dict. Money is integer fen (1 yuan = 100 fen) so pooled
sums stay exact; event times are kept both as aware datetimes and as epoch milliseconds
(``*_ms``) because rule windows compare them constantly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

INSTITUTION_KINDS = ("hospital", "primary", "pharmacy")
OWNERSHIPS = ("public", "private")
SPECIALTIES = ("internal", "surgery", "pediatrics", "obstetrics", "tcm", "rehab", "icu", "other")
VISIT_KINDS = ("outpatient", "inpatient", "pharmacy")
ITEM_CATEGORIES = ("drug", "consumable", "exam", "treatment", "bed", "service")
GENDERS = ("M", "F")


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    kind: str
    level: int
    ownership: str


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    specialty: str


@dataclass(frozen=True, slots=True)
class Patient:
    id: str
    gender: str
    age: int


@dataclass(frozen=True, slots=True)
class Visit:
    kind: str
    diagnoses: tuple[str, ...]
    admitted_at_ms: int | None = None
    discharged_at_ms: int | None = None
    drg_code: str | None = None
    drg_weight: float | None = None


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    category: str
    quantity: float
    unit_price_fen: int
    amount_fen: int
    name: str | None = None
    days_supply: int | None = None
    trace_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    settlement_id: str
    settled_at: datetime
    settled_at_ms: int
    region: str
    institution: Institution
    department: Department | None
    doctor_id: str | None
    patient: Patient
    visit: Visit
    items: tuple[Item, ...]
    total_fen: int
    fund_fen: int

    @property
    def drug_fen(self) -> int:
        """Sum of drug item amounts, the numerator of ``drug_ratio`` (SPEC §4)."""
        return sum(i.amount_fen for i in self.items if i.category == "drug")


def yuan_to_fen(amount: float) -> int:
    """Convert a yuan amount with at most 2 decimals to exact integer fen."""
    return int(round(amount * 100))


def fen_to_yuan(amount_fen: int) -> float:
    return round(amount_fen / 100, 2)
