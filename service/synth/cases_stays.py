"""Labelled claim cases about stays and travel (SPEC §7, §11): split admission, overlapping
stay, impossible travel, excessive exams and ghost beds, each with near-miss decoys.
"""

from __future__ import annotations

import math

from .casekit import H, Kit
from .lines import PRICE_FEN
from .pricing import BED

SPLIT, OVERLAP = "claim.split_admission", "claim.overlapping_stay"
TRAVEL, EXAMS, GHOST = "claim.impossible_travel", "claim.excessive_exams", "claim.ghost_bed"


def split_admission(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    other = kit.hospital(r, not_id=h.id)
    for gap, where, hit, why in (
            (8 + i % 5, h, True, "readmitted to the same hospital {gap} days after discharge"),
            (20, h, False, "decoy: readmitted to the same hospital after 20 days"),
            (8, other, False, "decoy: admitted elsewhere 8 days after discharge")):
        if not hit and i % 2 != (0 if where is h else 1):
            continue
        pat = kit.patient(None, (40, 85))
        d = kit.day(40)
        first = kit.stay((d, 10 * H), (d + 5, 10 * H), h, pat, ["J18.9"])
        adm = d + 5 + gap
        second = kit.stay((adm, 9 * H), (adm + 5, 11 * H), where, pat, ["J18.9"])
        kit.label(SPLIT, second, hit, why.format(gap=gap), [first])


def overlapping_stay(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    other = kit.hospital(r, not_id=h.id)
    d = kit.day(12)
    pat = kit.patient(None, (40, 85))
    if i % 2 == 0:
        inside = kit.outpatient(d + 3, kit.sec(9, 11), other, pat, ["M54.5"],
                                [("XM01AEA001A001", 1, 5)])
        why = "an outpatient visit elsewhere on day 3 of the stay"
    else:
        inside = kit.sale(d + 2, kit.sec(15, 19), kit.pharmacy(r), pat, [("ZA01BAA006A001", 1, 3)])
        why = "a pharmacy sale on day 2 of the stay"
    stay = kit.stay((d, 10 * H), (d + 6, 11 * H), h, pat, ["I63.9"])
    kit.label(OVERLAP, stay, True, why + " (hit on the stay: it arrives later)", [inside])
    kit.label(OVERLAP, inside, False, "arrives before the stay is known")
    pat = kit.patient(None, (40, 85))
    before = kit.outpatient(d - 1 if d > 1 else d, kit.sec(14, 16) if d > 1 else 8 * H, other,
                            pat, ["M54.5"], [("XM01AEA001A001", 1, 5)])
    stay = kit.stay((d, 10 * H), (d + 6, 11 * H), h, pat, ["I63.9"])
    after = kit.outpatient(d + 7, kit.sec(9, 11), other, pat, ["M54.5"],
                           [("XM01AEA001A001", 1, 5)])
    kit.label(OVERLAP, stay, False, "decoy: visits elsewhere the day before and after", [before])
    kit.label(OVERLAP, after, False, "decoy: a visit the day after discharge")


def impossible_travel(kit: Kit, i: int) -> None:
    r = kit.region()
    other = kit.other_region(r, i % 2)
    for gap_min, hit in ((int(kit.rng.integers(35, 100)), True),
                         (int(kit.rng.integers(300, 360)), False)):
        pat = kit.patient()
        d = kit.day(2, kit.first_day(other))
        t = kit.sec(8.5, 10.5)
        first = kit.outpatient(d, t, kit.hospital(r), pat, ["J06.9"], [("XN02BEA003A001", 1, 3)])
        second = kit.sale(d, t + gap_min * 60, kit.pharmacy(other), pat,
                          [("ZA01BAA006A001", 1, 3)])
        why = (f"settled in {r} then in {other} {gap_min} minutes later" if hit
               else f"decoy: two regions {gap_min} minutes apart")
        kit.label(TRAVEL, second, hit, why, [first])


def excessive_exams(kit: Kit, i: int) -> None:
    r = kit.region()
    h = kit.hospital(r)
    exam = ("250101001", "210301001", "250401001")[i % 3]
    for qty, hit in ((4 + i % 2, True), (3, False)):
        d = kit.day(8)
        stay = kit.stay((d, 10 * H), (d + 5, 10 * H), h, kit.patient(None, (40, 85)), ["J18.9"],
                        [(exam, qty)])
        why = f"{qty} of one exam code in one stay" + ("" if hit else " (decoy: the limit is 3)")
        kit.label(EXAMS, stay, hit, why)


def ghost_bed(kit: Kit, i: int) -> None:
    # cheap stays: at level-1 hospitals of the first two regions, too small for peer cards
    r = kit.pop.regions[i % min(2, len(kit.pop.regions))]
    h = kit.hospital(r, level=1)
    small = [("250101001", 1), ("XB05BBA001B001", 1, 1)]
    days = 4 + i % 3
    d = kit.day(10)
    stay = kit.stay((d, 9 * H), (d + days, 10 * H), h, kit.patient(None, (50, 85)), ["M54.5"],
                    small, shape="bed")
    kit.label(GHOST, stay, True, f"{days * 24 + 1} h stay, bed + service ~90 % of the total")
    d = kit.day(10)
    stay = kit.stay((d, 20 * H), (d + 3, 8 * H), h, kit.patient(None, (50, 85)), ["M54.5"],
                    small, shape="bed")
    kit.label(GHOST, stay, False, "decoy: same shape but a 60 h stay")
    bed_service = 5 * (PRICE_FEN[BED[h.level]] + PRICE_FEN["120100002"] + PRICE_FEN["110900001"])
    boxes = math.ceil(0.45 * bed_service / PRICE_FEN["XB01ABA005B001"])
    d = kit.day(10)
    stay = kit.stay((d, 9 * H), (d + 5, 10 * H), h, kit.patient(None, (50, 85)), ["M54.5"],
                    small + [("XB01ABA005B001", boxes, 1)], shape="bed")
    kit.label(GHOST, stay, False, "decoy: 5-day stay with bed + service about 70 %")


CASES = ((split_admission, 1), (overlapping_stay, 1), (impossible_travel, 1),
         (excessive_exams, 1), (ghost_bed, 1))
