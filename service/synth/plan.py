"""The anomaly plan for peer cards (SPEC §5) and fund monitors (§7b), fixed before any event.

The plan is a set of multipliers keyed by (entity, visit kind, month): ``cost`` scales a
visit's target total, ``drug`` its drug share; ``rate`` scales an entity's visit volume.
A visit's factors are the product over its institution, department and doctor. The plan
also lists the labelled cases (injected and decoys); their expected cards are not wished
here but computed from the generated data by ``peers``/``funds``.

Layout (small scale; larger scales have more of everything): region 1 holds six level-2
hospitals A–F whose internal departments have five doctors, so one inflated doctor moves
its department by about +12 % (below the 1.20 threshold). Region 2 holds the inflated
hospital and pharmacy; region 3's level-1 hospitals are uniformly expensive (a decoy).
"""

from __future__ import annotations

import numpy as np

from .clock import Clock
from .population import Dept, Doctor, Inst, Population

RED_MONTHS = 3


def entity(kind: str, inst: Inst, dept: Dept | None = None, doc: Doctor | None = None) -> dict:
    ident = {"doctor": doc.id if doc else None, "department": dept.id if dept else None}.get(
        kind, inst.id)
    return {"kind": kind, "id": ident, "institution_id": inst.id, "region": inst.region}


class Plan:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._mult: dict[tuple[str, str, int], tuple[float, float]] = {}
        self._rate: dict[tuple[str, int], float] = {}
        # disease swing visits: (region, month of the jump, [(category, dx, cases a month,
        # cost factor in the jump month)]) - scheduled as explicit events by cases_fund
        self.swing: tuple[str, int, list[tuple[str, str, int, float]]] | None = None
        self.peer_cases: list[dict] = []
        self.fund_cases: list[dict] = []
        self.protected: set[str] = set()

    # -- lookups used by the background ------------------------------------------------
    def mult(self, inst: Inst, dept: Dept | None, doc: Doctor | None, vk: str,
             k: int) -> tuple[float, float]:
        c = d = 1.0
        for key in (inst.id, dept and f"{inst.id}/{dept.id}", doc and doc.id):
            m = self._mult.get((key, vk, k)) if key else None
            if m is not None:
                c, d = c * m[0], d * m[1]
        return c, d

    def rate(self, inst: Inst, dept: Dept | None, doc: Doctor | None, k: int) -> float:
        r = 1.0
        for key in (inst.id, dept and f"{inst.id}/{dept.id}", doc and doc.id):
            r *= self._rate.get((key, k), 1.0) if key else 1.0
        return r

    # -- building ----------------------------------------------------------------------
    def _months(self, span: str) -> list[int]:
        n = len(self.clock.months)
        return list(range(max(0, n - RED_MONTHS), n)) if span == "last3" else (
            [n - 1] if span == "last" else list(range(n)))

    def inflate(self, key: str, vks: tuple[str, ...], span: str, cost: float = 1.0,
                drug: float = 1.0) -> list[str]:
        months = self._months(span)
        for vk in vks:
            for k in months:
                self._mult[(key, vk, k)] = (cost, drug)
        return [self.clock.months[k] for k in months]

    def peer(self, rule: str, ent: dict, vk: str, decoy: bool, why: str,
             months: list[str]) -> None:
        if ent["kind"] in ("doctor", "pharmacy"):  # claim cases keep off labelled entities
            self.protected.add(ent["id"])
        self.peer_cases.append({"rule": rule, "entity": ent, "visit_kind": vk, "decoy": decoy,
                                "inflated_months": months, "why": why})


def _dept(inst: Inst, specialty: str) -> Dept:
    return next(d for d in inst.depts if d.specialty == specialty)


COST, DRUG = "peer.cost_per_visit", "peer.drug_ratio"
OUT = ("outpatient",)


def doctor_case(plan: Plan, inst: Inst, rule: str, span: str, why: str) -> None:
    """The quietest internal doctor of ``inst`` (the smallest share of its department)
    gets cost or drug share x1.6 over ``span``."""
    doc = min(_dept(inst, "internal").doctors, key=lambda x: x.rate)
    months = plan.inflate(doc.id, OUT, span, *((1.6, 1.0) if rule == COST else (1.0, 1.6)))
    plan.peer(rule, entity("doctor", inst, _dept(inst, "internal"), doc), "outpatient",
              False, why, months)


def doctor_decoys(plan: Plan, e: Inst) -> None:
    """The busiest internal doctor of ``e`` at x1.08, the quietest at x2 on ~6 visits."""
    docs = sorted(_dept(e, "internal").doctors, key=lambda x: x.rate)
    # near misses are x1.08 against a neutral peer: the entity's own style is cancelled
    months = plan.inflate(docs[-1].id, OUT, "all", 1.08 / (docs[-1].cost_mult * e.cost_mult))
    plan.peer(COST, entity("doctor", e, _dept(e, "internal"), docs[-1]), "outpatient", True,
              "decoy: doctor cost x1.08, below the 1.20 threshold", months)
    low = docs[0]
    months = plan.inflate(low.id, OUT, "all", 2.0)
    for k in range(len(plan.clock.months)):
        plan._rate[(low.id, k)] = 6.0 / low.rate
    plan.peer(COST, entity("doctor", e, _dept(e, "internal"), low), "outpatient", True,
              "decoy: doctor cost x2 but about 6 visits a month (< 10 minimum)", months)


def build(rng: np.random.Generator, pop: Population, clock: Clock) -> Plan:
    plan = Plan(clock)
    r1, r2, r3 = pop.regions[:3]
    l2 = pop.by_region(r1, "hospital", 2)
    a, b, c, d, e, f = (l2[int(j)] for j in rng.permutation(len(l2))[:6])
    for inst, rule, span, why in (
            (a, COST, "last3", "doctor cost x1.6 for 3 months: yellow, yellow, red"),
            (b, DRUG, "last3", "doctor drug share x1.6 for 3 months: yellow, yellow, red"),
            (c, COST, "last", "doctor cost x1.6 in the last month only: yellow"),
            (d, DRUG, "last", "doctor drug share x1.6 in the last month only: yellow")):
        doctor_case(plan, inst, rule, span, why)
    doctor_decoys(plan, e)
    ped = _dept(f, "pediatrics")
    months = plan.inflate(f"{f.id}/{ped.id}", OUT, "last3", 1.6)
    plan.peer(COST, entity("department", f, ped), "outpatient", False,
              "department cost x1.6 for 3 months (all its doctors): yellow, yellow, red", months)
    months = plan.inflate(c.id, ("inpatient",), "last", 1.6)
    plan.peer(COST, entity("hospital", c), "inpatient", False,
              "hospital inpatient cost x1.6 in the last month: yellow", months)
    g = pop.by_region(r2, "hospital", 2)[int(rng.integers(0, 5))]
    months = plan.inflate(g.id, OUT, "last3", 1.5)
    plan.peer(COST, entity("hospital", g), "outpatient", False,
              "hospital cost x1.5 for 3 months (every department): yellow, yellow, red", months)
    ph = pop.by_region(r2, "pharmacy")
    p = ph[int(rng.integers(len(ph)))]
    months = plan.inflate(p.id, ("pharmacy",), "last3", 1.6)
    plan.peer(COST, entity("pharmacy", p), "pharmacy", False,
              "pharmacy cost x1.6 for 3 months: yellow, yellow, red", months)
    ph1 = pop.by_region(r1, "pharmacy")
    p1 = ph1[int(rng.integers(len(ph1)))]
    months = plan.inflate(p1.id, ("pharmacy",), "all", 1.08 / p1.cost_mult)
    plan.peer(COST, entity("pharmacy", p1), "pharmacy", True,
              "decoy: pharmacy cost x1.08, below the 1.20 threshold", months)
    for h in pop.by_region(r3, "hospital", 1):
        months = plan.inflate(h.id, OUT, "all", 1.5)
        why = "decoy: every level-1 hospital of the region costs x1.5; nobody stands out"
        plan.peer(COST, entity("hospital", h), "outpatient", True, why, months)
        for dp in h.depts:  # the large departments (small ones have few or no peers)
            if dp.specialty in ("internal", "surgery"):
                plan.peer(COST, entity("department", h, dp), "outpatient", True, why, months)
        for doc in _dept(h, "internal").doctors:
            plan.peer(COST, entity("doctor", h, _dept(h, "internal"), doc), "outpatient", True,
                      why, months)
    _fund(rng, plan, pop, f)
    return plan


def _fund(rng: np.random.Generator, plan: Plan, pop: Population, jump: Inst) -> None:
    n = len(plan.clock.months)
    if n < 2:
        return
    k_closed = n - 2  # the last month that closes inside the data (needs 24 h after it)
    period = plan.clock.months[k_closed]
    r1, r2 = pop.regions[:2]
    for k in range(k_closed, n):
        plan._rate[(jump.id, k)] = 1.5
    plan.fund_cases.append({"rule": "fund.expenditure_growth",
                            "entity": {"kind": "institution", "id": jump.id, "region": r1},
                            "period": period, "decoy": False,
                            "why": "volume x1.5 from this month on: fund_amount +50 %"})
    tiny = pop.by_region(r1, "primary", 0)[0]
    for k in range(k_closed, n):
        plan._rate[(tiny.id, k)] = 2.0
    plan.fund_cases.append({"rule": "fund.expenditure_growth",
                            "entity": {"kind": "institution", "id": tiny.id, "region": r1},
                            "period": period, "decoy": True,
                            "why": "decoy: +100 % on a base under 50,000 yuan"})
    steady = pop.by_region(r2, "hospital", 3)[0]
    for k in range(n):
        plan._rate[(steady.id, k)] = 1.08 ** k * _calendar(plan.clock, 0) / _calendar(
            plan.clock, k)
    plan.fund_cases.append({"rule": "fund.expenditure_growth",
                            "entity": {"kind": "institution", "id": steady.id, "region": r2},
                            "period": period, "decoy": True,
                            "why": "decoy: steady +8 % a month (calendar-adjusted volume)"})
    k_swing = n - 2 if n >= 5 else n - 1
    kinds = [("B02", "B02.9", 26, 1.8, False, "cost per case x1.8 in this month"),
             ("B35", "B35.3", 6, 2.5, True, "decoy: cost per case x2.5 but < 20 cases")]
    plan.swing = (r2, k_swing, [(cat, dx, per_month, mult) for cat, dx, per_month, mult, _, _
                                in kinds])
    for cat, _, _, _, decoy, why in kinds:
        plan.fund_cases.append({"rule": "fund.disease_cost_swing",
                                "entity": {"kind": "diagnosis", "id": cat, "region": r2},
                                "visit_kind": "outpatient",
                                "period": plan.clock.months[k_swing], "decoy": decoy,
                                "why": why})


def _calendar(clock: Clock, k: int) -> float:
    """Expected visit-days of month ``k`` under the hospital weekday rhythm."""
    from .background import HOSPITAL_WEEK
    return float(sum(HOSPITAL_WEEK[clock.weekday(d)] for d in range(clock.n_days)
                     if clock.month_of_day[d] == k))
