"""Normal visits, day by day, that never trip a claim rule (SPEC §7) by accident.

Volumes follow a weekday rhythm (hospitals quiet at weekends, pharmacies busier) and a
daytime rhythm (morning peak, afternoon clinic, a few evening visits). Daily counts come
from a per-entity accumulator (systematic sampling), so monthly volumes are steady and a
month's peer or fund metric moves only when the anomaly plan moves it.

Structural guarantees, per background patient: one home region (no travel); at most one
settlement per calendar day (no same-day duplicates, ≤ 2 pharmacy sales in any 24 h);
no settlement from admission day to discharge day (no overlapping stay); the next
admission at least 30 days after a discharge (no split admission). Item-level limits
are enforced by ``pricing``. Trace codes are fresh (``lines.TraceCodes``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .clock import Clock
from .lines import Ev
from .population import Dept, Doctor, Inst, PatientPool, Population, patient_id
from .pricing import Builder

WARMUP_DAYS = 25
HOSPITAL_WEEK = np.array([1.15, 1.05, 1.05, 1.05, 1.0, 0.55, 0.4]) / (6.25 / 7)
PHARMACY_WEEK = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.15, 1.1]) / (7.25 / 7)
ADMISSION_WEEK = np.array([1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7])
DAYS_PER_MONTH = 365.25 / 12


def _pool_name(inst: Inst, specialty: str) -> str:
    if specialty == "pediatrics":
        return "child"
    if specialty == "obstetrics":
        return "fertile_f"
    return "all" if inst.kind == "primary" else "adult"


class Background:
    """Yields, for each day ``0 .. n_days-1``, that day's background settlements."""

    def __init__(self, rng: np.random.Generator, pop: Population, clock: Clock,
                 builder: Builder, plan) -> None:
        self.rng, self.pop, self.clock, self.b, self.plan = rng, pop, clock, builder, plan
        self.acc: dict[str, float] = {}
        self.pending: dict[int, list[Ev]] = {}

    def _count(self, key: str, per_day: float) -> int:
        acc = self.acc.get(key)
        if acc is None:
            acc = float(self.rng.random())
        new = acc + per_day
        self.acc[key] = new
        return int(new) - int(acc)

    def _patient(self, pp: PatientPool, pool: str, day: int, admit: bool) -> int | None:
        idx = pp.pools[pool]
        for _ in range(12):
            i = int(idx[int(self.rng.integers(len(idx)))])
            if pp.free_from[i] <= day and (not admit or pp.admit_from[i] <= day):
                return i
        return None

    def _pat(self, pp: PatientPool, i: int) -> tuple:
        return (patient_id(pp.base + i), "F" if pp.gender[i] else "M", int(pp.age[i]))

    def _sec_outpatient(self) -> int:
        """Morning peak, afternoon clinic, a few evening (emergency) visits."""
        rng = self.rng
        r = rng.random()
        for _ in range(8):
            h = rng.normal(9.8, 1.1) if r < 0.65 else (rng.normal(15.5, 1.0) if r < 0.95
                                                       else rng.uniform(18.0, 22.5))
            if 7.5 <= h < 12.0 or 13.5 <= h < 22.5:
                break
        else:
            h = rng.uniform(8.0, 11.5)
        return int(h * 3600)

    def _admissions(self, day: int, k: int, inst: Inst, dept: Dept, pp: PatientPool) -> None:
        rate = self.plan.rate(inst, dept, None, k)
        per_day = dept.stays_per_month * rate / DAYS_PER_MONTH * ADMISSION_WEEK[
            self.clock.weekday(day)]
        for _ in range(self._count(f"{inst.id}/{dept.id}/in", per_day)):
            i = self._patient(pp, _pool_name(inst, dept.specialty), day, admit=True)
            if i is None:
                continue
            doc: Doctor = dept.doctors[int(self.rng.integers(len(dept.doctors)))]

            def mult(dis_day: int, doc: Doctor = doc) -> tuple[float, float]:
                kk = self.clock.month_of_day[min(max(dis_day, 0), self.clock.n_days - 1)]
                return self.plan.mult(inst, dept, doc, "inpatient", kk)

            dis_day, ev = self.b.inpatient(day, inst, dept, doc.cost_mult, doc.id,
                                           self._pat(pp, i), int(pp.chronic[i]), mult)
            pp.free_from[i] = dis_day + 1
            pp.admit_from[i] = dis_day + 30
            if 0 <= dis_day < self.clock.n_days:  # stays ending outside the data never settle
                self.pending.setdefault(dis_day, []).append(ev)

    def _outpatients(self, day: int, k: int, inst: Inst, dept: Dept, pp: PatientPool,
                     out: list[Ev]) -> None:
        week = HOSPITAL_WEEK[self.clock.weekday(day)]
        for doc in dept.doctors:
            if doc.rate <= 0:
                continue
            rate = self.plan.rate(inst, dept, doc, k)
            for _ in range(self._count(doc.id, doc.rate * rate / DAYS_PER_MONTH * week)):
                i = self._patient(pp, _pool_name(inst, dept.specialty), day, admit=False)
                if i is None:
                    continue
                cm, dm = self.plan.mult(inst, dept, doc, "outpatient", k)
                out.append(self.b.outpatient(day, self._sec_outpatient(), inst, dept,
                                             doc.cost_mult, doc.id, self._pat(pp, i),
                                             int(pp.chronic[i]), cm, dm))
                pp.free_from[i] = day + 1

    def _sales(self, day: int, k: int, inst: Inst, pp: PatientPool, out: list[Ev]) -> None:
        per_day = inst.sales_per_month * self.plan.rate(inst, None, None, k) / DAYS_PER_MONTH
        for _ in range(self._count(inst.id, per_day * PHARMACY_WEEK[self.clock.weekday(day)])):
            i = self._patient(pp, "adult", day, admit=False)
            if i is None:
                continue
            sec = int(self.rng.uniform(8.0, 21.5) * 3600)
            cm, _ = self.plan.mult(inst, None, None, "pharmacy", k)
            out.append(self.b.pharmacy(day, sec, inst, self._pat(pp, i), cm))
            pp.free_from[i] = day + 1

    def days(self) -> Iterator[tuple[int, list[Ev]]]:
        clock = self.clock
        for day in range(-WARMUP_DAYS, clock.n_days):
            k = clock.month_of_day[day] if day >= 0 else 0
            self.b.month = k
            out: list[Ev] = []
            for inst in self.pop.institutions:  # admissions first: they block the stay days
                pp = self.pop.patients[inst.region]
                for dept in inst.depts:
                    if dept.stays_per_month > 0:
                        self._admissions(day, k, inst, dept, pp)
            if day < 0:
                continue
            for inst in self.pop.institutions:
                pp = self.pop.patients[inst.region]
                if inst.kind == "pharmacy":
                    self._sales(day, k, inst, pp, out)
                    continue
                for dept in inst.depts:
                    self._outpatients(day, k, inst, dept, pp, out)
            out.extend(self.pending.pop(day, ()))
            yield day, out
