"""Settlement assembly: item lines in exact fen, trace codes, the SPEC §3 record."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .catalogue import ITEMS
from .clock import Clock
from .population import Dept, Inst

_M = 10**13
PRICE_FEN = {code: int(round(item.unit_price * 100)) for code, item in ITEMS.items()}


class TraceCodes:
    """Allocates 20-digit drug traceability codes, each exactly once.

    ``8`` + a 6-digit product prefix from the drug code + a 13-digit serial that is a
    bijection of a running counter (affine maps with multipliers coprime with 10**13 and
    a decimal digit rotation, each a bijection), so no code repeats.
    """

    def __init__(self) -> None:
        self.count = 0

    def take(self, code: str, boxes: int) -> list[str]:
        prefix = f"8{zlib.crc32(code.encode()) % 1_000_000:06d}"
        out = []
        for _ in range(boxes):
            x = (self.count * 4_398_046_511_093 + 1_234_567_891) % _M
            x = (x % 10**6) * 10**7 + x // 10**6
            serial = (x * 2_718_281_828_459 + 3_141_592_653) % _M
            self.count += 1
            out.append(f"{prefix}{serial:013d}")
        return out


class Lines:
    """Item lines of one settlement with running fen totals."""

    __slots__ = ("items", "total", "drug", "bed_service", "codes")

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.total = 0
        self.drug = 0
        self.bed_service = 0
        self.codes: set[str] = set()

    def add(self, code: str, qty: int, days: int | None = None,
            traces: list[str] | None = None) -> None:
        item = ITEMS[code]
        amount = PRICE_FEN[code] * qty
        row = {"code": code, "name": item.name, "category": item.category, "quantity": qty,
               "unit_price": item.unit_price, "amount": amount / 100}
        if days is not None:
            row["days_supply"] = days
        if traces is not None:
            row["trace_codes"] = traces
        self.items.append(row)
        self.codes.add(code)
        self.total += amount
        if item.category == "drug":
            self.drug += amount
        elif item.category in ("bed", "service"):
            self.bed_service += amount


@dataclass(slots=True)
class Ev:
    """One settlement on its way to the file, with the fen sums the label oracles need."""

    ms: int
    order: int
    rec: dict
    inst: Inst
    dept: Dept | None
    total_fen: int
    drug_fen: int
    fund_fen: int
    key: str | None = None  # label key, resolved to the settlement_id when written
    drg_weight: float | None = None


class Assembler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.order = 0
        self._inst_json: dict[str, dict] = {}
        self._dept_json: dict[tuple[str, str], dict] = {}

    def settle(self, day: int, sec: int, inst: Inst, dept: Dept | None, doctor_id: str | None,
               patient: tuple[str, str, int], visit: dict, lines: Lines, fund_ratio: float,
               key: str | None = None) -> Ev:
        ij = self._inst_json.get(inst.id)
        if ij is None:
            ij = self._inst_json[inst.id] = inst.as_json()
        dj = None
        if dept is not None:
            dj = self._dept_json.get((inst.id, dept.id))
            if dj is None:
                dj = self._dept_json[(inst.id, dept.id)] = {"id": dept.id,
                                                            "specialty": dept.specialty}
        fund = min(lines.total, max(0, int(round(lines.total * fund_ratio))))
        rec = {"settlement_id": None, "settled_at": self.clock.iso(day, sec),
               "region": inst.region, "institution": ij, "department": dj,
               "doctor_id": doctor_id,
               "patient": {"id": patient[0], "gender": patient[1], "age": patient[2]},
               "visit": visit, "items": lines.items, "total_amount": lines.total / 100,
               "fund_amount": fund / 100}
        self.order += 1
        drg = visit.get("drg")
        return Ev(self.clock.ms(day, sec), self.order, rec, inst, dept, lines.total,
                  lines.drug, fund, key, None if drg is None else drg["weight"])
