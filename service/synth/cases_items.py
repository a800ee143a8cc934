"""Labelled claim cases about items and sales (SPEC §7, §11): trace-code reuse, gender and
age limits, duplicate items, over-quantity and pharmacy frequency, each with near-miss
decoys that must not fire.
"""

from __future__ import annotations

from .casekit import H, Kit

TRACE, GENDER, AGE = "claim.trace_code_reuse", "claim.gender_restricted", "claim.age_restricted"
DUP, OVER, FREQ = "claim.duplicate_item", "claim.over_quantity", "claim.pharmacy_frequency"
OMEPRAZOLE, NIFEDIPINE, COLD = "XA02BCA001A001", "XC08CAA001A001", "ZA01BAA006A001"


def _codes(ev, drug: str) -> list[str]:
    return next(it["trace_codes"] for it in ev.rec["items"] if it["code"] == drug)


def trace_code_reuse(kit: Kit, i: int) -> None:
    r = kit.region()
    other = kit.other_region(r) if i % 2 else r
    d = kit.day(14, kit.first_day(other))
    a, b, c = kit.patient(), kit.patient(), kit.patient()
    drug = (OMEPRAZOLE, NIFEDIPINE)[i % 2]
    if i % 2 == 0:
        first = kit.outpatient(d, kit.sec(), kit.hospital(r), a, ["K29.7"], [(drug, 3, 5)])
        codes = _codes(first, drug)
        reused = [codes[1]] + kit.traces.take(drug, 1)
        later = d + int(kit.rng.integers(2, 11))
        hit = kit.sale(later, kit.sec(9, 20), kit.pharmacy(r), b, [(drug, 2, 5, reused)])
        why = "a box sold at a hospital is sold again at a pharmacy to another patient"
    else:
        first = kit.sale(d, kit.sec(9, 12), kit.pharmacy(r), a, [(drug, 2, 5)])
        codes = _codes(first, drug)
        later = d + int(kit.rng.integers(1, 8))
        hit = kit.sale(later, kit.sec(9, 20), kit.pharmacy(other), b, [(drug, 2, 5, codes)])
        why = "both boxes of a pharmacy sale are sold again in another region"
    kit.label(TRACE, hit, True, why, [first])
    fresh = kit.sale(later, kit.sec(13, 20), kit.pharmacy(r), c, [(drug, 2, 5)])
    kit.label(TRACE, fresh, False, "decoy: the same drug with fresh trace codes")
    again = kit.sale(later + 1, kit.sec(9, 12), kit.pharmacy(r), a, [(drug, 2, 5)])
    kit.label(TRACE, again, False, "decoy: the first buyer buys again, new boxes")


def restricted(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    d = kit.day()
    variants = (
        (GENDER, ("M", (25, 55)), "internal", ["N97.9"], ("250602001", 1),
         "hCG test (female only) for a man"),
        (GENDER, ("F", (30, 70)), "surgery", ["N40"], ("250601001", 1),
         "PSA test (male only) for a woman"),
        (GENDER, ("F", (30, 70)), "surgery", ["N40"], ("XG04CAA002A001", 1, 5),
         "tamsulosin (male only) for a woman"),
        (AGE, (None, (30, 70)), "internal", ["J06.9"], ("XR05XAA001B001", 2, 3),
         "paediatric granules (age <= 14) for an adult"),
        (AGE, (None, (8, 14)), "pediatrics", ["J20.9"], ("XJ01MAL012A001", 1, 5),
         "levofloxacin (age >= 18) for a child"),
        (AGE, (None, (30, 70)), "internal", ["M54.5"], ("310602001", 1),
         "paediatric massage (age <= 14) for an adult"),
    )
    rule, who, spec, dx, item, why = variants[i % len(variants)]
    ev = kit.outpatient(d, kit.sec(), h, kit.patient(*who), dx, [item], spec)
    kit.label(rule, ev, True, why)
    decoys = (
        (GENDER, ("F", (22, 40)), "obstetrics", ["Z32.1"], ("250602001", 1),
         "decoy: hCG test for a woman"),
        (GENDER, ("M", (50, 75)), "surgery", ["N40"], ("250601001", 1),
         "decoy: PSA test for a man"),
        (AGE, (None, (3, 12)), "pediatrics", ["J06.9"], ("XR05XAA001B001", 2, 3),
         "decoy: paediatric granules for a child"),
        (AGE, (None, (25, 70)), "internal", ["J20.9"], ("XJ01MAL012A001", 1, 5),
         "decoy: levofloxacin for an adult"),
    )
    rule, who, spec, dx, item, why = decoys[i % len(decoys)]
    ev = kit.outpatient(d, kit.sec(13, 17), h, kit.patient(*who), dx, [item], spec)
    kit.label(rule, ev, False, why)


def duplicate_item(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    d = kit.day(3)
    p1, p2, p3, p4 = (kit.patient() for _ in range(4))
    exam = ("250101001", "220201001", "210102001")[i % 3]
    one = kit.outpatient(d, kit.sec(), h, p1, ["R10.4"], [(exam, 1), (exam, 1)])
    kit.label(DUP, one, True, "the same exam on two lines of one settlement")
    first = kit.outpatient(d, kit.sec(8, 11), h, p2, ["R10.4"], [(exam, 1)])
    second = kit.outpatient(d, kit.sec(14, 17), h, p2, ["R10.4"], [(exam, 1)])
    kit.label(DUP, second, True, "the same exam in two settlements of one day, one institution",
              [first])
    qty2 = kit.outpatient(d, kit.sec(), h, p3, ["R10.4"], [(exam, 2)])
    kit.label(DUP, qty2, False, "decoy: quantity 2 on one line")
    before = kit.outpatient(d, kit.sec(15, 17), h, p4, ["R10.4"], [(exam, 1)])
    after = kit.outpatient(d + 1, kit.sec(8.5, 10), h, p4, ["R10.4"], [(exam, 1)])
    kit.label(DUP, after, False, "decoy: the same exam the next day", [before])


def over_quantity(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    d = kit.day(10)
    hits = (
        (["J06.9"], ("XJ01CAA040A001", 3, 14), "14 days of an antibiotic, acute diagnosis"),
        (["I10"], (NIFEDIPINE, 4, 60), "60 days of a chronic drug (limit 30)"),
        (None, (COLD, 3, 10), "pharmacy sale without diagnosis, 10 days (limit 7)"),
    )
    dx, item, why = hits[i % 3]
    pat = kit.patient()
    ev = (kit.sale(d, kit.sec(9, 20), kit.pharmacy(r), pat, [item]) if dx is None
          else kit.outpatient(d, kit.sec(), h, pat, dx, [item]))
    kit.label(OVER, ev, True, why)
    decoys = (
        (["E11.9"], ("XA10BAA002A001", 3, 25), "decoy: 25 days with a chronic diagnosis"),
        (["J06.9"], ("XJ01CAA040A001", 2, 7), "decoy: 7 days, acute diagnosis (at the limit)"),
        (None, (COLD, 2, 7), "decoy: pharmacy sale of 7 days"),
        ("stay", ("XC10AAA005A001", 2, 20), "decoy: 20 days on an inpatient drug line"),
    )
    dx, item, why = decoys[i % 4]
    pat = kit.patient()
    if dx is None:
        ev = kit.sale(d, kit.sec(9, 20), kit.pharmacy(r), pat, [item])
    elif dx == "stay":
        ev = kit.stay((d, 10 * H), (d + 4, 10 * H), h, pat, ["I63.9", "E78.5"], [item])
    else:
        ev = kit.outpatient(d, kit.sec(13, 17), h, pat, dx, [item])
    kit.label(OVER, ev, False, why)


def pharmacy_frequency(kit: Kit, i: int) -> None:
    r = kit.region()
    d = kit.day(3)
    shops = [kit.pharmacy(r) for _ in range(2)]
    plans = (
        ((0, 9), (0, 11.5), (0, 15), (0, 19.5)),
        ((0, 14), (0, 17), (0, 20), (1, 10)),
    )
    pat = kit.patient()
    evs = [kit.sale(d + dd, int(hh * H), shops[j % 2], pat, [(COLD, 1, 3)])
           for j, (dd, hh) in enumerate(plans[i % 2])]
    kit.label(FREQ, evs[3], True, "4th pharmacy settlement within 24 h", evs[:3])
    for ev in evs[:3]:
        kit.label(FREQ, ev, False, "the first three sales are below the count")
    pat = kit.patient()
    if i % 2 == 0:
        evs = [kit.sale(d, int(hh * H), shops[j % 2], pat, [(COLD, 1, 3)])
               for j, hh in enumerate((9, 13, 19))]
        kit.label(FREQ, evs[2], False, "decoy: 3 pharmacy sales in 24 h")
    else:
        evs = [kit.sale(d + dd, int(hh * H), shops[j % 2], pat, [(COLD, 1, 3)])
               for j, (dd, hh) in enumerate(((0, 9), (0, 17), (1, 8), (1, 13)))]
        kit.label(FREQ, evs[3], False, "decoy: 4 sales spread over 28 h, never 4 in 24 h")


# (case builder, calls per scale unit): ``restricted`` covers two rules.
CASES = ((trace_code_reuse, 1), (restricted, 2), (duplicate_item, 1), (over_quantity, 1),
         (pharmacy_frequency, 1))
