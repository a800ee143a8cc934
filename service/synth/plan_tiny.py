"""The anomaly plan of the ``tiny`` scale: one region, every kind of peer case, ~3k events.

Population (``population.SCALES["tiny"]``): three level-2 hospitals whose internal
departments have four doctors (a peer group of twelve) and one doctor in each other
department, one level-1 hospital (for the ghost-bed cases), four level-1 clinics and five
pharmacies. A peer group needs four qualifying members before anyone in it can fire, so
cards can only come from the level-2 internal doctors, the clinics (doctors, departments,
institutions) and the pharmacies; every other group stays under four.

Of the three level-2 hospitals, A's quietest internal doctor costs x1.6 in the last
three months (yellow, yellow, red), B's has drug share x1.6 in the last month (yellow)
and C carries the doctor decoys (x1.08; x2 on about 6 visits a month). One clinic costs
x1.6 in the last month (a hospital-kind card, yellow; its doctors and its department fire
as ``derived`` cards). One pharmacy costs x1.6 in the last three months (yellow, yellow,
red); another is a x1.08 decoy.

Near misses are x1.08 against a neutral peer, as in the larger scales. Groups this small
feel their own anomalies (the x1.6 pharmacy alone lifts its peers' mean by ~15 %), so at
month end the decoys sit at about x1.0 of their actual peers; early in a month, at ten
visits, the doctor decoy can still cross 1.20 (about 1 seed in 70): the labels then list
that card under the decoy, as ground truth.

No fund cases: an institution needs a 50,000-yuan month to be judged, and a disease swing
needs five months. Whatever fund alerts the data produces are still labelled.
"""

from __future__ import annotations

import numpy as np

from .clock import Clock
from .plan import COST, DRUG, OUT, Plan, doctor_case, doctor_decoys, entity
from .population import Population


def build(rng: np.random.Generator, pop: Population, clock: Clock) -> Plan:
    plan = Plan(clock)
    (r,) = pop.regions
    l2 = pop.by_region(r, "hospital", 2)
    a, b, c = (l2[int(j)] for j in rng.permutation(len(l2))[:3])
    doctor_case(plan, a, COST, "last3", "doctor cost x1.6 for 3 months: yellow, yellow, red")
    doctor_case(plan, b, DRUG, "last", "doctor drug share x1.6 in the last month only: yellow")
    doctor_decoys(plan, c)
    clinics = pop.by_region(r, "primary")
    q = clinics[int(rng.integers(len(clinics)))]
    months = plan.inflate(q.id, OUT, "last", 1.6)
    plan.peer(COST, entity("hospital", q), "outpatient", False,
              "clinic (hospital kind) cost x1.6 in the last month only: yellow", months)
    ph = pop.by_region(r, "pharmacy")
    i, j = (int(x) for x in rng.permutation(len(ph))[:2])
    months = plan.inflate(ph[i].id, ("pharmacy",), "last3", 1.6)
    plan.peer(COST, entity("pharmacy", ph[i]), "pharmacy", False,
              "pharmacy cost x1.6 for 3 months: yellow, yellow, red", months)
    months = plan.inflate(ph[j].id, ("pharmacy",), "all", 1.08 / ph[j].cost_mult)
    plan.peer(COST, entity("pharmacy", ph[j]), "pharmacy", True,
              "decoy: pharmacy cost x1.08, below the 1.20 threshold", months)
    return plan

