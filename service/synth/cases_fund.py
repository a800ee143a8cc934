"""Scheduled visits behind the disease-cost-swing cases (SPEC §7b).

Two diagnosis categories that the background never uses are seen at the region's
level-0 primary clinics every month (outpatient, internal): one often enough (≥ 20
cases) whose cost per case jumps in the plan's month, one too rare to count. Level-0
clinics are few per region, so these extra visits leave the peer cards alone.
"""

from __future__ import annotations

from .casekit import Kit
from .plan import Plan


def schedule(kit: Kit, plan: Plan) -> None:
    if plan.swing is None:
        return
    region, k_jump, kinds = plan.swing
    clinics = kit.pop.by_region(region, "primary", 0) or kit.pop.by_region(region, "primary")
    clock = kit.clock
    for k in range(len(clock.months)):
        days = [d for d in range(clock.n_days) if clock.month_of_day[d] == k
                and clock.weekday(d) < 5]
        for _, dx, per_month, mult in kinds:
            for _ in range(per_month):
                inst = kit.pick(clinics)
                dept = kit.dept(inst, "internal")
                doc = kit.doctor(dept)
                ev = kit.builder.outpatient(kit.pick(days), kit.sec(8, 16.5), inst, dept,
                                        doc.cost_mult, doc.id, kit.patient(None, (20, 80)),
                                        -1, mult if k == k_jump else 1.0, 1.0, [dx])
                kit.events.append(ev)
