"""Visit builders: lognormal costs by level, specialty and visit kind, filled with items.

A visit draws a target total (lognormal around a base that depends on the institution
level, the department specialty and the visit kind, times the entity multipliers of the
anomaly plan) and a drug share around the specialty mean, then fills the target with
catalogue items: consultation/bed/nursing services, distinct exams, drugs in whole boxes
(one trace code per box) and treatments for the rest. Every builder respects the
catalogue's gender/age limits and the §7 limits (days of supply, one line per code, at
most 3 of one exam per stay, bed + service well under 80 % of a stay).
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from .catalogue import CHRONIC_PATIENT_DX, INPATIENT_DX, ITEMS, OUTPATIENT_DX
from .lines import PRICE_FEN, Assembler, Ev, Lines, TraceCodes
from .population import Dept, Inst
from .usage import (
    CHRONIC_DRUGS,
    IN_DRUGS,
    IN_EXAMS,
    IN_TREAT,
    OUT_DRUGS,
    OUT_EXAMS,
    OUT_TREAT,
    PHARMACY_DRUGS,
    PROCEDURES,
)

OUT_BASE = {0: 70.0, 1: 110.0, 2: 170.0, 3: 240.0}
IN_BASE = {0: 2500.0, 1: 3500.0, 2: 5500.0, 3: 8000.0}
SPEC_MULT = {"internal": 1.0, "surgery": 1.15, "pediatrics": 0.75, "obstetrics": 1.1,
             "tcm": 0.95, "rehab": 1.25, "other": 0.85, "icu": 1.0}
DRUG_OUT = {"internal": .50, "surgery": .25, "pediatrics": .42, "obstetrics": .22, "tcm": .55,
            "rehab": .12, "other": .35, "icu": .40}
DRUG_IN = {"internal": .40, "surgery": .25, "pediatrics": .35, "obstetrics": .20, "tcm": .35,
           "rehab": .15, "icu": .45, "other": .25}
FUND_OUT = {0: .70, 1: .65, 2: .55, 3: .50}
FUND_IN = {0: .85, 1: .80, 2: .72, 3: .65}
SERVICE = {0: "110200001", 1: "110200002", 2: "110200003", 3: "110200004"}
BED = {0: "111000001", 1: "111000001", 2: "111000002", 3: "111000003"}
SIGMA_COST = 0.16
SIGMA_SHARE = 0.10
BLOCK = 8
_NORMAL = NormalDist()

CHRONIC_SPECIALTIES = ("internal", "tcm")


def _deck(rows: tuple) -> tuple[int, ...]:
    """Row indexes repeated by their (integer) weight: one shuffled deck is one case mix."""
    return tuple(i for i, row in enumerate(rows) for _ in range(int(row[1])))


_OUT_DX = {k: (v, _deck(v)) for k, v in OUTPATIENT_DX.items()}
_IN_DX = {k: (v, _deck(v)) for k, v in INPATIENT_DX.items()}


class Builder:
    """Builds background visits; ``asm`` and ``traces`` are shared with the anomalies."""

    def __init__(self, rng: np.random.Generator, asm: Assembler, traces: TraceCodes) -> None:
        self.rng = rng
        self.asm = asm
        self.traces = traces
        self._z: dict[str, list[float]] = {}
        self._decks: dict[str, list[int]] = {}
        self.month = 0  # set by the caller: strata restart every month

    def z(self, key: str) -> float:
        """A standard normal draw, stratified per ``key`` and month in blocks of ``BLOCK``.

        Each block holds one draw from each of ``BLOCK`` equal-probability strata, in
        random order: every visit is still lognormal, but an entity's running mean settles
        fast, so month-to-date peer ratios do not wander at the minimum volume.
        """
        key = f"{key}/{self.month}"
        queue = self._z.get(key)
        if queue is None and len(self._z) > 50_000:  # drop the strata of past months
            self._z = {k: q for k, q in self._z.items() if k.endswith(f"/{self.month}")}
            self._decks = {k: d for k, d in self._decks.items() if k.endswith(f"/{self.month}")}
        if not queue:
            u = (self.rng.permutation(BLOCK) + self.rng.random(BLOCK)) / BLOCK
            queue = self._z[key] = [_NORMAL.inv_cdf(min(max(x, 1e-9), 1 - 1e-9)) for x in u]
        return queue.pop()

    def _pick(self, key: str, table: tuple[tuple, tuple[int, ...]]) -> tuple:
        """A row drawn without replacement from a per-``key`` and month shuffled deck, so
        every doctor sees the designed case mix within each deck's worth of visits."""
        key = f"{key}/{self.month}"
        deck = self._decks.get(key)
        if not deck:
            order = table[1]
            deck = self._decks[key] = [order[int(j)] for j in self.rng.permutation(len(order))]
        return table[0][deck.pop()]

    def _fit(self, cand: list[str], budget: float, max_qty: int) -> tuple[str, int]:
        """The candidate (in the given order) whose whole quantity lands nearest ``budget``."""
        best, best_q, best_err = cand[0], 1, float("inf")
        for code in cand:
            q = min(max(1, int(round(budget / PRICE_FEN[code]))), max_qty)
            err = abs(budget - q * PRICE_FEN[code])
            if err < best_err:
                best, best_q, best_err = code, q, err
        return best, best_q

    def drugs(self, lines: Lines, pool: tuple[str, ...], budget_fen: float, pat: tuple,
              n_lines: int, days: tuple[int, int], max_boxes: int) -> None:
        """Whole boxes of up to ``n_lines`` distinct drugs worth about ``budget_fen``; the
        last line is the best fit for what is left."""
        cand = [c for c in pool if c not in lines.codes and ITEMS[c].allows(pat[1], pat[2])]
        if not cand or budget_fen <= 0:
            return
        cand = [cand[int(j)] for j in self.rng.permutation(len(cand))]
        k = max(1, min(n_lines, len(cand)))
        left = budget_fen
        for j in range(k):
            per = left / (k - j)
            if j < k - 1:
                fits = [c for c in cand if PRICE_FEN[c] <= per <= PRICE_FEN[c] * max_boxes]
                code, qty = self._fit(fits[:1] or cand, per, max_boxes)
            else:
                code, qty = self._fit(cand, left, max_boxes)
            cand.remove(code)
            lines.add(code, qty, int(self.rng.integers(days[0], days[1] + 1)),
                      self.traces.take(code, qty))
            left -= PRICE_FEN[code] * qty
            if left < PRICE_FEN[code] / 2 or not cand:
                break

    def fill(self, lines: Lines, exams: tuple[str, ...], treats: tuple[str, ...],
             budget_fen: float, pat: tuple, max_exams: int, exam_qty: int,
             max_treat_qty: int, n_treat: int = 1) -> None:
        """Distinct exams (quantity ≤ ``exam_qty``), then best-fitting treatment lines."""
        left = budget_fen
        n = 0
        for j in self.rng.permutation(len(exams)):
            code = exams[int(j)]
            if n >= max_exams or code in lines.codes or not ITEMS[code].allows(pat[1], pat[2]):
                continue
            qty = int(self.rng.integers(1, exam_qty + 1))
            if PRICE_FEN[code] * qty <= left:
                lines.add(code, qty)
                left -= PRICE_FEN[code] * qty
                n += 1
        cand = [c for c in treats if c not in lines.codes and ITEMS[c].allows(pat[1], pat[2])]
        cand = [cand[int(j)] for j in self.rng.permutation(len(cand))]
        for j in range(n_treat):
            per = left / (n_treat - j)
            fits = [c for c in cand if PRICE_FEN[c] <= per * 1.5]
            if not fits:
                break
            code, qty = self._fit(fits, per, max_treat_qty)
            cand.remove(code)
            lines.add(code, qty)
            left -= PRICE_FEN[code] * qty

    def outpatient(self, day: int, sec: int, inst: Inst, dept: Dept, doctor_mult: float,
                   doctor_id: str, pat: tuple, chronic: int, cost_mult: float,
                   drug_mult: float, dx: list[str] | None = None,
                   lines: Lines | None = None) -> Ev:
        """An outpatient visit. ``dx`` forces the diagnoses (no chronic drugs then);
        ``lines`` holds case items: the visit is filled around them to a typical cost,
        never repeating one of their codes."""
        rng, spec = self.rng, dept.specialty
        chronic_visit = False
        if dx is None:
            dx = [self._pick(doctor_id, _OUT_DX[spec])[0]]
        else:
            chronic = -1
        if chronic >= 0 and (spec in CHRONIC_SPECIALTIES or inst.kind == "primary"):
            code = CHRONIC_PATIENT_DX[chronic][0]
            if rng.random() < 0.5:
                dx = [code]
                chronic_visit = True
            elif rng.random() < 0.4:
                dx.append(code)
                chronic_visit = True
        total = (OUT_BASE[inst.level] * 100 * SPEC_MULT[spec] * inst.cost_mult * doctor_mult
                 * cost_mult * float(np.exp(SIGMA_COST * self.z(doctor_id + "/c"))))
        share = DRUG_OUT[spec] + (0.08 if inst.kind == "primary" else 0.0)
        share = min(0.9, share * drug_mult
                    * float(np.exp(SIGMA_SHARE * self.z(doctor_id + "/s"))))
        lines = Lines() if lines is None else lines
        lines.add(SERVICE[inst.level], 1)
        rest = total * (1 - share) - (lines.total - lines.drug)
        self.fill(lines, OUT_EXAMS[spec], OUT_TREAT[spec], rest, pat, 2, 1, 8)
        drug_budget = total * share - lines.drug
        if chronic_visit:
            pool = CHRONIC_DRUGS.get(dx[-1][:3]) or CHRONIC_DRUGS.get(dx[0][:3], ())
            before = lines.drug
            self.drugs(lines, pool, drug_budget * 0.6, pat, 1, (14, 30), 6)
            drug_budget -= lines.drug - before
        self.drugs(lines, OUT_DRUGS[spec], drug_budget, pat, 1 + int(rng.integers(0, 2)),
                   (3, 7), 8)
        fund = FUND_OUT[inst.level] + float(rng.uniform(-0.05, 0.05))
        return self.asm.settle(day, sec, inst, dept, doctor_id, pat[:3],
                               {"kind": "outpatient", "diagnoses": dx}, lines, fund)

    def pharmacy(self, day: int, sec: int, inst: Inst, pat: tuple, cost_mult: float,
                 lines: Lines | None = None) -> Ev:
        """A pharmacy sale (drugs, sometimes masks), filled around any case ``lines``."""
        rng = self.rng
        total = 75.0 * 100 * inst.cost_mult * cost_mult * float(
            np.exp(SIGMA_COST * self.z(inst.id)))
        lines = Lines() if lines is None else lines
        if rng.random() < 0.08 and "C00020002" not in lines.codes:
            lines.add("C00020002", 1)
        self.drugs(lines, PHARMACY_DRUGS, total - lines.total, pat,
                   1 + int(rng.integers(0, 2)), (3, 7), 6)
        if not lines.items:
            lines.add("XA11GAA001A001", 1, 5, self.traces.take("XA11GAA001A001", 1))
        fund = 0.35 + float(rng.uniform(-0.05, 0.05))
        return self.asm.settle(day, sec, inst, None, None, pat[:3],
                               {"kind": "pharmacy", "diagnoses": []}, lines, fund)

    def top_up(self, lines: Lines, inst: Inst, specialty: str, pat: tuple, bed_days: int) -> None:
        """Fill a case stay with drugs and treatments up to a typical stay cost."""
        target = IN_BASE[inst.level] * 100 * float(np.exp(SIGMA_COST * self.rng.normal()))
        rest = target - lines.total
        if rest <= 0:
            return
        share = DRUG_IN.get(specialty, 0.3)
        self.drugs(lines, IN_DRUGS["*"] + IN_DRUGS.get(specialty, ()), rest * share, pat,
                   3, (1, 3), 15)
        self.fill(lines, (), IN_TREAT, target - lines.total, pat, 0, 1, 12 * bed_days, 3)

    def inpatient(self, day: int, inst: Inst, dept: Dept, doctor_mult: float, doctor_id: str,
                  pat: tuple, chronic: int,
                  mult: Callable[[int], tuple[float, float]]) -> tuple[int, Ev]:
        """An inpatient stay admitted on ``day``; ``mult(discharge day)`` gives the plan's
        (cost, drug) factors, since a stay counts in the month it is settled. Returns
        (discharge day, settlement)."""
        rng, spec = self.rng, dept.specialty
        code, _, drg, weight = self._pick(doctor_id + "/in", _IN_DX[spec])
        los = int(np.clip(round(float(np.exp(rng.normal(np.log(3.5 + 2.5 * weight), 0.3)))),
                          2, 21))
        adm_sec = int(rng.integers(8 * 3600, 20 * 3600))
        dis_day, dis_sec = day + los, int(rng.integers(9 * 3600, 15 * 3600))
        cost_mult, drug_mult = mult(dis_day)
        dx = [code]
        if chronic >= 0 and rng.random() < 0.5:
            dx.append(CHRONIC_PATIENT_DX[chronic][0])
        icu = spec == "icu"
        bed, nurse = ("111000004", "120100001") if icu else (BED[inst.level], "120100002")
        lines = Lines()
        for c in (bed, nurse, "110900001"):
            lines.add(c, los)
        key = f"{doctor_id}/in"
        total = (IN_BASE[inst.level] * 100 * weight * inst.cost_mult * doctor_mult * cost_mult
                 * float(np.exp(SIGMA_COST * self.z(key + "c"))))
        total = max(total, lines.total / 0.45)
        share = min(0.9, DRUG_IN[spec] * drug_mult
                    * float(np.exp(SIGMA_SHARE * self.z(key + "s"))))
        proc = PROCEDURES.get(code)
        if proc is not None and ITEMS[proc].allows(pat[1], pat[2]):
            lines.add(proc, 1)
        rest = total * (1 - share) - lines.total
        self.fill(lines, IN_EXAMS, IN_TREAT, rest, pat, int(rng.integers(3, 7)), 3, 12 * los, 3)
        self.drugs(lines, IN_DRUGS["*"] + IN_DRUGS.get(spec, ()), total * share, pat,
                   int(rng.integers(2, 6)), (1, 3), 15)
        if lines.bed_service > 0.7 * lines.total:  # never a ghost-bed shape by accident
            fix = "C00010003" if "C00010003" not in lines.codes else "C00010004"
            lines.add(fix, int(lines.bed_service / 0.6 - lines.total) // PRICE_FEN[fix] + 1)
        visit = {"kind": "inpatient", "admitted_at": self.asm.clock.iso(day, adm_sec),
                 "discharged_at": self.asm.clock.iso(dis_day, dis_sec), "diagnoses": dx}
        if inst.kind == "hospital" and rng.random() < 0.92:
            visit["drg"] = {"code": drg, "weight": weight}
        fund = FUND_IN[inst.level] + float(rng.uniform(-0.05, 0.05))
        return dis_day, self.asm.settle(dis_day, dis_sec, inst, dept, doctor_id, pat[:3], visit,
                                        lines, fund)
