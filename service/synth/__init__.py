"""Synthetic settlements with injected, labelled anomalies (SPEC §3, §5, §7, §7b, §10).

``generate(out_dir, months=4, seed=7, scale="small", start="2025-08")`` writes

* ``settlements.jsonl`` — one SPEC §3 settlement per line, sorted by ``settled_at``
  (+08:00). Regions with hospitals of levels 1–3, primary clinics (level 0/1) and
  pharmacies; departments with specialties; doctors; patients with gender and age;
  lognormal costs by level, specialty and visit kind; drug shares by specialty; a
  weekday and daytime rhythm; inpatient stays settled at discharge with bed, nursing,
  exams and DRG; drugs in boxes with one fresh 20-digit trace code each.
* ``labels.json`` — the ground truth::

    {"generator", "seed", "scale", "start", "months": ["2025-08", ...], "rules",
     "counts": {"settlements", "by_visit_kind", "by_region", "claim_hits",
                "claim_decoys", "peer_cards": {"injected"|"derived"|"natural": n},
                "fund_alerts"},
     "peer": [{"rule", "entity": {"kind", "id", "institution_id", "region"},
               "visit_kind", "decoy": bool, "why", "inflated_months": [...],
               "expected": [{"period", "level"}],        # computed; [] for decoys
               "metrics": [{"period", "n", "cost_per_visit", "drug_ratio",
                            "peer_entities", "peer_cost_per_visit", "peer_drug_ratio",
                            "qualified", "held": {rule: bool}}],   # end of each month
               "min_visits"}],
     "peer_cards": [{"rule", "entity", "visit_kind", "period", "level",
                     "source": "injected"|"derived"|"natural"}],   # every card
     "claims": [{"rule", "settlement_id", "expected_hit": bool, "why",
                 "related": [settlement_id, ...]}],
     "fund": [{"rule", "entity": {"kind", "id", "region"}, "visit_kind"?, "period",
               "decoy", "why", "expected": [{"level", "metric", "change"}],
               "values": {"previous", "current", "change", "closed_in_data"} or
                         {"cases", "cost_per_case", "baseline_costs", "closed_in_data"}}],
     "fund_alerts": [{"rule", "entity", "period", "metric", "previous", "current",
                      "change", "level", ("visit_kind", "cases")}]}

Peer expectations are not wishes: ``peers.PeerOracle`` replays the written stream with
the §5/§11 reading (evaluated at every update of an entity against the other qualifying
peers; red after two held months). A red period may also carry the yellow it
supersedes. Cards of entities that merely share an institution (and visit kind) with an
injected case are ``derived`` (an inflated hospital inflates its departments and
doctors); anything else that fires is ``natural`` (rare: costs are lognormal but drawn
in stratified blocks per doctor and month, so month-to-date means settle fast). Claim
labels name every settlement that must be hit (``expected_hit``) and near misses that
must not; every other settlement is clean for every claim rule by construction. Fund
alerts are computed for closed months (every month but the last, which closes only when
the stream continues); ``fund.inpatient_growth`` has no volume floor in the SPEC, so
small institutions add natural alerts. With the default four months the
disease-swing case sits in the last, unclosed month (``closed_in_data`` false); use
five or more months to see it judged.

Scales: ``small`` ≈ 29k settlements for 4 months (a few seconds), ``medium`` ≈ 10×,
``large`` ≈ 100× (three more regions), written day by day. ``tiny`` (≈ 3k for 3 months,
well under a second; for broker-backed tests) is one region with the peer cases of
``plan_tiny`` and ≥ 3 hits of every claim rule; the cross-region claim cases (impossible
travel, one trace-code variant) settle their second visit at the one pharmacy of a
neighbour region, in the last month only, so no month of that region closes in the data.

Deterministic: one ``numpy.random.default_rng(seed)`` split with ``spawn``; same
arguments give byte-identical files. Memory stays bounded (one day of events plus open
stays), so the large scale streams to disk. Patient ids are never printed or logged.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import cases_fund, cases_items, cases_stays, labels, plan, plan_tiny, population
from .background import Background
from .casekit import Kit
from .clock import Clock
from .lines import Assembler, Ev, TraceCodes
from .population import SCALES
from .pricing import Builder
from .writer import Writer, write_labels

__all__ = ["SCALES", "generate"]


def generate(out_dir: Path, months: int = 4, seed: int = 7, scale: str = "small",
             start: str = "2025-08") -> dict:
    """Write ``settlements.jsonl`` and ``labels.json`` into ``out_dir``; return counts."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = SCALES[scale]
    r_pop, r_plan, r_cases, r_bg = np.random.default_rng(seed).spawn(4)
    clock = Clock(start, months)
    pop = population.build(r_pop, sc)
    the_plan = (plan_tiny if sc.layout == "tiny" else plan).build(r_plan, pop, clock)
    asm, traces = Assembler(clock), TraceCodes()
    kit = Kit(r_cases, pop, clock, asm, traces, the_plan.protected)
    for build, calls in cases_items.CASES + cases_stays.CASES:
        for i in range(sc.cases * calls):
            build(kit, i)
    cases_fund.schedule(kit, the_plan)
    scheduled: dict[int, list[Ev]] = defaultdict(list)
    for ev in kit.events:
        day = (ev.ms - clock.base_ms) // 86_400_000
        if 0 <= day < clock.n_days:
            scheduled[day].append(ev)
    bg = Background(r_bg, pop, clock, Builder(r_bg, asm, traces), the_plan)
    writer = Writer(out_dir / "settlements.jsonl", clock)
    try:
        for day, events in bg.days():
            events.extend(scheduled.pop(day, ()))
            writer.day(day, events)
    finally:
        writer.close()
    doc = labels.assemble(seed, scale, start, the_plan, kit, writer)
    write_labels(out_dir / "labels.json", doc)
    return {**doc["counts"], "seconds": round(time.perf_counter() - t0, 2),
            "out_dir": str(out_dir)}
