"""Helpers for the labelled claim cases (SPEC §7): dedicated patients, explicit visits.

Every case uses patients of its own (never seen in the background nor in another case),
so a case can only trip the rule it is about. Events carry a label key; the writer maps
keys to the settlement ids it assigns.
"""

from __future__ import annotations

import numpy as np

from .catalogue import ITEMS
from .clock import Clock
from .lines import Assembler, Ev, Lines, TraceCodes
from .population import Dept, Doctor, Inst, Population, patient_id
from .pricing import BED, FUND_IN, Builder

H = 3600


class Kit:
    def __init__(self, rng: np.random.Generator, pop: Population, clock: Clock,
                 asm: Assembler, traces: TraceCodes, protected: set[str] = frozenset()) -> None:
        self.rng, self.pop, self.clock, self.asm, self.traces = rng, pop, clock, asm, traces
        self.protected = protected  # labelled peer entities: no case visits there
        self.builder = Builder(rng, asm, traces)
        self.events: list[Ev] = []
        self.labels: list[dict] = []
        self._keys = 0

    # -- choices ----------------------------------------------------------------------
    def pick(self, seq: list):
        return seq[int(self.rng.integers(len(seq)))]

    def patient(self, gender: str | None = None, age: tuple[int, int] = (25, 70)) -> tuple:
        index = self.pop.next_patient
        self.pop.next_patient += 1
        g = gender or ("F" if self.rng.random() < 0.5 else "M")
        return (patient_id(index), g, int(self.rng.integers(age[0], age[1] + 1)))

    def region(self) -> str:
        return self.pick(list(self.pop.regions))

    def other_region(self, region: str, start: int = 0) -> str:
        """Another region: the first after ``start`` that differs, else a travel-only one."""
        regions = self.pop.regions[start:] + self.pop.regions
        return next((x for x in regions if x != region), None) or self.pop.travel[0].region

    def first_day(self, region: str) -> int:
        """The first day a case may settle in ``region``: travel-only regions are visited
        in the last month only, so no month of theirs closes inside the data (SPEC §7b)."""
        if region in self.pop.regions:
            return 1
        return max(1, self.clock.first_day_of_month(len(self.clock.months) - 1))

    def hospital(self, region: str, not_id: str | None = None, level: int = 2) -> Inst:
        """A hospital of ``level`` or above (a level-1 one for ``level=1``)."""
        cands = [i for i in self.pop.by_region(region, "hospital")
                 if (i.level >= level if level > 1 else i.level == 1) and i.id != not_id]
        return self.pick(cands)

    def pharmacy(self, region: str) -> Inst:
        return self.pick([p for p in self.pop.by_region(region, "pharmacy")
                          if p.id not in self.protected])

    def doctor(self, dept: Dept) -> Doctor:
        docs = [d for d in dept.doctors if d.id not in self.protected]
        return self.pick(docs or list(dept.doctors))

    @staticmethod
    def dept(inst: Inst, specialty: str = "internal") -> Dept:
        return next(d for d in inst.depts if d.specialty == specialty)

    def day(self, before_end: int = 2, lo: int = 1) -> int:
        return int(self.rng.integers(lo, max(lo + 1, self.clock.n_days - before_end)))

    def sec(self, lo_h: float = 8.5, hi_h: float = 11.5) -> int:
        return int(self.rng.uniform(lo_h, hi_h) * H)

    # -- events -----------------------------------------------------------------------
    def _keep(self, ev: Ev) -> Ev:
        self._keys += 1
        ev.key = f"c{self._keys}"
        self.events.append(ev)
        return ev

    def add(self, lines: Lines, code: str, qty: int = 1, days: int | None = None,
            traces: list[str] | None = None) -> None:
        if ITEMS[code].category == "drug":
            days = 5 if days is None else days
            traces = self.traces.take(code, qty) if traces is None else traces
        lines.add(code, qty, days, traces)

    def _lines(self, items: list[tuple] | None) -> Lines:
        lines = Lines()
        for it in items or ():
            self.add(lines, *it)
        return lines

    def outpatient(self, day: int, sec: int, inst: Inst, pat: tuple, dx: list[str],
                   items: list[tuple], specialty: str = "internal") -> Ev:
        """An outpatient visit with the case ``items``, filled to a typical cost."""
        dept = self.dept(inst, specialty)
        doc = self.doctor(dept)
        return self._keep(self.builder.outpatient(day, sec, inst, dept, doc.cost_mult, doc.id,
                                                  pat, -1, 1.0, 1.0, dx, self._lines(items)))

    def sale(self, day: int, sec: int, inst: Inst, pat: tuple, items: list[tuple]) -> Ev:
        """A pharmacy sale with the case ``items``, filled to a typical cost."""
        return self._keep(self.builder.pharmacy(day, sec, inst, pat, 1.0, self._lines(items)))

    def stay(self, adm: tuple[int, int], dis: tuple[int, int], inst: Inst, pat: tuple,
             dx: list[str], items: list[tuple] | None = None, shape: str = "normal",
             specialty: str = "internal") -> Ev:
        """An inpatient stay settled at discharge. ``shape``: ``normal`` (a typical stay
        around the case items) or ``bed`` (bed + service and the case items only)."""
        dept = self.dept(inst, specialty)
        bed_days = max(1, dis[0] - adm[0])
        lines = self._lines(items)
        for code in (BED[inst.level], "120100002", "110900001"):
            lines.add(code, bed_days)
        if shape == "normal":
            for code in ("250101001", "250301001", "210102001"):
                if code not in lines.codes:
                    lines.add(code, 1)
            self.builder.top_up(lines, inst, specialty, pat, bed_days)
        doc = self.doctor(dept)
        visit = {"kind": "inpatient", "admitted_at": self.clock.iso(*adm),
                 "discharged_at": self.clock.iso(*dis), "diagnoses": dx}
        return self._keep(self.asm.settle(dis[0], dis[1], inst, dept, doc.id, pat, visit,
                                          lines, FUND_IN[inst.level]))

    def label(self, rule: str, ev: Ev, hit: bool, why: str, related: list[Ev] = ()) -> None:
        self.labels.append({"rule": rule, "key": ev.key, "expected_hit": hit, "why": why,
                            "related_keys": [r.key for r in related]})
