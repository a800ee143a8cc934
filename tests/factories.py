"""Test factories: domain ``Settlement`` objects and SPEC §3 JSON events with sane defaults.

``make_settlement(kind="inpatient", at="2025-11-18T10:00:00+08:00", stay_hours=72,
items=[bed(amount_fen=...), ...])`` builds a valid settlement; every keyword has a default
per visit kind, amounts are summed, ids are unique per process. ``to_event(s)`` gives the
JSON event the validator would turn into ``s`` (yuan amounts, RFC 3339 times). Default item
codes are those of the synthetic feed's catalogue (``service/synth/catalogue.py``).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from detectors.domain import Department, Institution, Item, Patient, Settlement, Visit

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 11, 18, 10, 0, 0, tzinfo=CST)
T0_MS = int(T0.timestamp() * 1000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_ids = itertools.count(1)

TimeLike = datetime | str | int | None


def ms(t: TimeLike, default: int = T0_MS) -> int:
    """Epoch ms of a datetime, an RFC 3339 string or an int (already ms); None → default."""
    if t is None:
        return default
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return int(t.timestamp() * 1000)


def item(code: str, category: str, *, quantity: float = 1, unit_price_fen: int = 1000,
         amount_fen: int | None = None, name: str | None = None, days_supply: int | None = None,
         trace_codes: Iterable[str] = ()) -> Item:
    amount = round(quantity * unit_price_fen) if amount_fen is None else amount_fen
    return Item(code=code, category=category, quantity=quantity, unit_price_fen=unit_price_fen,
                amount_fen=amount, name=name, days_supply=days_supply,
                trace_codes=tuple(trace_codes))


def drug(code: str = "XJ01DCC092A001", *, quantity: float = 2, unit_price_fen: int = 2950,
         days_supply: int | None = 6, trace_codes: Iterable[str] = (), **kw: Any) -> Item:
    return item(code, "drug", quantity=quantity, unit_price_fen=unit_price_fen,
                days_supply=days_supply, trace_codes=trace_codes, **kw)


def exam(code: str = "220201001", *, quantity: float = 1, unit_price_fen: int = 9000,
         **kw: Any) -> Item:
    return item(code, "exam", quantity=quantity, unit_price_fen=unit_price_fen, **kw)


def service(code: str = "110200003", *, quantity: float = 1, unit_price_fen: int = 2500,
            **kw: Any) -> Item:
    return item(code, "service", quantity=quantity, unit_price_fen=unit_price_fen, **kw)


def treatment(code: str = "120400001", *, quantity: float = 1, unit_price_fen: int = 1500,
              **kw: Any) -> Item:
    return item(code, "treatment", quantity=quantity, unit_price_fen=unit_price_fen, **kw)


def bed(code: str = "111000001", *, quantity: float = 1, unit_price_fen: int = 5000,
        **kw: Any) -> Item:
    return item(code, "bed", quantity=quantity, unit_price_fen=unit_price_fen, **kw)


def consumable(code: str = "C00010001", *, quantity: float = 1, unit_price_fen: int = 800,
               **kw: Any) -> Item:
    return item(code, "consumable", quantity=quantity, unit_price_fen=unit_price_fen, **kw)


def default_items(kind: str) -> tuple[Item, ...]:
    if kind == "inpatient":  # bed + service well under 80 % of the total
        return (bed(quantity=5), service(quantity=5, unit_price_fen=2000),
                exam("250101001", quantity=2, unit_price_fen=2000),
                drug("XJ01DDA063B001", quantity=10, unit_price_fen=2600, days_supply=None),
                treatment(quantity=5), consumable(quantity=4))
    if kind == "pharmacy":
        return (drug("XA10BAA002A001", quantity=1, unit_price_fen=960, days_supply=7),)
    return (service(), exam(), drug())


_DIAGNOSES = {"outpatient": ("J06.9",), "inpatient": ("J18.9",), "pharmacy": ()}


def make_settlement(
    *, kind: str = "outpatient", settlement_id: str | None = None, at: TimeLike = None,
    region: str = "610302", institution_id: str | None = None,
    institution_kind: str | None = None, level: int = 2, ownership: str = "public",
    department_id: str | None = "INT1", specialty: str = "internal",
    doctor_id: str | None = "D1042", patient_id: str = "p-7f3a91c2", gender: str = "F",
    age: int = 45, diagnoses: Iterable[str] | None = None, admitted_at: TimeLike = None,
    discharged_at: TimeLike = None, stay_hours: float = 120,
    items: Iterable[Item] | None = None, fund_share: float = 0.6,
    drg_code: str | None = None, drg_weight: float | None = None,
) -> Settlement:
    """A valid settlement; ``at`` is ``settled_at`` (default ``T0``, 2025-11-18 10:00 +08:00).

    Inpatient: ``discharged_at`` defaults to ``at`` and ``admitted_at`` to
    ``discharged_at − stay_hours``. Pharmacy: institution kind ``pharmacy``, no department,
    no doctor, no diagnoses unless given.
    """
    settled_ms = ms(at)
    pharmacy = kind == "pharmacy"
    adm = dis = None
    if kind == "inpatient":
        dis = ms(discharged_at, settled_ms)
        adm = ms(admitted_at, dis - round(stay_hours * HOUR_MS))
    lines = tuple(default_items(kind) if items is None else items)
    total = sum(i.amount_fen for i in lines)
    return Settlement(
        settlement_id=settlement_id or f"S{next(_ids):06d}",
        settled_at=datetime.fromtimestamp(settled_ms / 1000, CST),
        settled_at_ms=settled_ms,
        region=region,
        institution=Institution(
            id=institution_id or ("P0001" if pharmacy else "H0007"),
            kind=institution_kind or ("pharmacy" if pharmacy else "hospital"),
            level=0 if pharmacy and level == 2 else level, ownership=ownership),
        department=None if pharmacy or department_id is None else Department(
            department_id, specialty),
        doctor_id=None if pharmacy else doctor_id,
        patient=Patient(id=patient_id, gender=gender, age=age),
        visit=Visit(kind=kind, diagnoses=tuple(_DIAGNOSES[kind] if diagnoses is None
                                               else diagnoses),
                    admitted_at_ms=adm, discharged_at_ms=dis, drg_code=drg_code,
                    drg_weight=drg_weight),
        items=lines,
        total_fen=total,
        fund_fen=round(total * fund_share),
    )


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, CST).isoformat()


def to_event(s: Settlement) -> dict[str, Any]:
    """The SPEC §3 JSON event of a settlement (money in yuan, times RFC 3339 +08:00)."""
    visit: dict[str, Any] = {"kind": s.visit.kind, "diagnoses": list(s.visit.diagnoses)}
    if s.visit.admitted_at_ms is not None:
        visit["admitted_at"] = _iso(s.visit.admitted_at_ms)
    if s.visit.discharged_at_ms is not None:
        visit["discharged_at"] = _iso(s.visit.discharged_at_ms)
    if s.visit.drg_code is not None:
        visit["drg"] = {"code": s.visit.drg_code, "weight": s.visit.drg_weight}
    items = []
    for i in s.items:
        line: dict[str, Any] = {"code": i.code, "category": i.category, "quantity": i.quantity,
                                "unit_price": i.unit_price_fen / 100, "amount": i.amount_fen / 100}
        if i.name is not None:
            line["name"] = i.name
        if i.days_supply is not None:
            line["days_supply"] = i.days_supply
        if i.trace_codes:
            line["trace_codes"] = list(i.trace_codes)
        items.append(line)
    inst = s.institution
    return {
        "settlement_id": s.settlement_id, "settled_at": _iso(s.settled_at_ms),
        "region": s.region,
        "institution": {"id": inst.id, "kind": inst.kind, "level": inst.level,
                        "ownership": inst.ownership},
        "department": None if s.department is None else {
            "id": s.department.id, "specialty": s.department.specialty},
        "doctor_id": s.doctor_id,
        "patient": {"id": s.patient.id, "gender": s.patient.gender, "age": s.patient.age},
        "visit": visit, "items": items,
        "total_amount": s.total_fen / 100, "fund_amount": s.fund_fen / 100,
    }


def make_event(**overrides: Any) -> dict[str, Any]:
    """``to_event(make_settlement(**overrides))``."""
    return to_event(make_settlement(**overrides))
