"""Claim rules that compare a settlement with the patient's history (SPEC §7, §11).

Pairwise rules use arrival order: the hit goes to the arriving settlement and names the
earlier-arrived one(s) in ``related``, looking both ways in event time where SPEC §11 allows
(a late-arriving settlement still meets the stays and visits already known). Each function
is named after its rule id and scans the bounded history once: O(entries).
"""

from __future__ import annotations

from detectors.claims.hit import Hit, codes, hours
from detectors.claims.history import PatientHistory
from detectors.domain import Settlement
from detectors.ruleset_sections import (
    DuplicateItemParams,
    ImpossibleTravelParams,
    OverlappingStayParams,
    PharmacyFrequencyParams,
    SplitAdmissionParams,
)


def duplicate_item(
    params: DuplicateItemParams, history: PatientHistory, s: Settlement, day: str
) -> Hit | None:
    """``claim.duplicate_item``: a watched code on two lines, or also charged the same day.

    Watched codes are those of ``params.categories`` (exam, treatment, service). Same day
    means the same local calendar ``day`` (region time zone) at the same institution. A
    quantity above 1 on one line is not a duplicate.
    """
    lines: dict[str, int] = {}
    for item in s.items:
        if item.category in params.categories:
            lines[item.code] = lines.get(item.code, 0) + 1
    twice = [code for code, n in lines.items() if n > 1]
    same_day: dict[str, list[str]] = {}
    for e in history.entries:
        if e.institution_id == s.institution.id and e.local_date == day:
            for code in e.codes:
                if code in lines:
                    same_day.setdefault(code, []).append(e.settlement_id)
    if not twice and not same_day:
        return None
    related = tuple(dict.fromkeys(sid for ids in same_day.values() for sid in ids))
    parts = []
    if twice:
        parts.append(f"on two lines of this settlement: {codes(twice)}")
    if same_day:
        parts.append(f"also charged on {day} at {s.institution.id} in "
                     f"{codes(list(related))}: {codes(list(same_day))}")
    items = tuple(code for code in lines if code in twice or code in same_day)
    return Hit("claim.duplicate_item", params.action,
               "same item charged twice " + "; ".join(parts), items, related)


def split_admission(
    params: SplitAdmissionParams, history: PatientHistory, s: Settlement
) -> Hit | None:
    """``claim.split_admission``: admission ≤ ``window_hours`` after a discharge, same place.

    Reads ``admitted_at − previous discharged_at ≤ 15 × 24 h`` (gap ≥ 0) for the pair of
    stays at one institution, in either arrival order: an arriving readmission after a
    known discharge, or an arriving earlier stay discharged shortly before a known one.
    """
    own = _stay(s)
    if own is None:
        return None
    found = []
    for e in history.entries:
        other = e.stay
        if other is None or e.institution_id != s.institution.id:
            continue
        for gap in (own[0] - other[1], other[0] - own[1]):
            if 0 <= gap <= params.window_ms:
                found.append((e.settlement_id, gap))
    if not found:
        return None
    detail = codes([f"{sid} ({hours(gap)} between discharge and admission)"
                    for sid, gap in found])
    return Hit("claim.split_admission", params.action,
               f"readmission to {s.institution.id} within {params.window_hours} h of a "
               f"discharge: {detail}", (), tuple(sid for sid, _ in found))


def overlapping_stay(
    params: OverlappingStayParams, history: PatientHistory, s: Settlement
) -> Hit | None:
    """``claim.overlapping_stay``: a settlement dated inside an inpatient stay elsewhere.

    Arriving inpatient stay ``[admitted, discharged]``: known settlements of other
    institutions dated inside it (inclusive), and known stays elsewhere overlapping it
    (strictly, so a same-instant transfer is not an overlap). Any other arriving
    settlement: known stays elsewhere containing its ``settled_at`` (inclusive).
    """
    own = _stay(s)
    t = s.settled_at_ms
    found = []
    for e in history.entries:
        if e.institution_id == s.institution.id:
            continue
        other = e.stay
        if own is not None and other is not None:
            hit = other[0] < own[1] and own[0] < other[1]
        elif own is not None:
            hit = own[0] <= e.settled_at_ms <= own[1]
        else:
            hit = other is not None and other[0] <= t <= other[1]
        if hit:
            found.append(e)
    if not found:
        return None
    what = "inpatient stay overlaps" if own is not None else "settled during"
    detail = codes([f"{e.settlement_id} ({e.visit_kind} at {e.institution_id})" for e in found])
    return Hit("claim.overlapping_stay", params.action,
               f"{what} a stay or visit at another institution: {detail}", (),
               tuple(e.settlement_id for e in found))


def impossible_travel(
    params: ImpossibleTravelParams, history: PatientHistory, s: Settlement
) -> Hit | None:
    """``claim.impossible_travel``: settled in another region less than the window apart."""
    found = [e for e in history.entries
             if e.region != s.region and abs(e.settled_at_ms - s.settled_at_ms) < params.window_ms]
    if not found:
        return None
    detail = codes([f"{e.settlement_id} (region {e.region}, "
                    f"{abs(e.settled_at_ms - s.settled_at_ms) / 60_000:.0f} min apart)"
                    for e in found])
    return Hit("claim.impossible_travel", params.action,
               f"settled in region {s.region} and another region less than "
               f"{params.window_minutes} min apart: {detail}", (),
               tuple(e.settlement_id for e in found))


def pharmacy_frequency(
    params: PharmacyFrequencyParams, history: PatientHistory, s: Settlement
) -> Hit | None:
    """``claim.pharmacy_frequency``: the ``count``-th pharmacy sale inside any window.

    A window is half-open, ``[t, t + window)``: ``count`` sales including the arriving one
    whose first and last are less than ``window_hours`` apart hit. Late arrivals count.
    """
    if s.visit.kind != "pharmacy":
        return None
    w = params.window_ms
    sales = sorted(
        [(e.settled_at_ms, e.settlement_id) for e in history.entries
         if e.visit_kind == "pharmacy" and abs(e.settled_at_ms - s.settled_at_ms) < w]
        + [(s.settled_at_ms, s.settlement_id)]
    )
    me = sales.index((s.settled_at_ms, s.settlement_id))
    n = params.count
    for first in range(max(0, me - n + 1), min(me, len(sales) - n) + 1):
        window = sales[first:first + n]
        if window[-1][0] - window[0][0] < w:
            related = tuple(sid for _, sid in window if sid != s.settlement_id)
            return Hit("claim.pharmacy_frequency", params.action,
                       f"{n} pharmacy settlements within {params.window_hours} h "
                       f"(with {codes(list(related))})", (), related)
    return None


def _stay(s: Settlement) -> tuple[int, int] | None:
    v = s.visit
    if v.kind != "inpatient" or v.admitted_at_ms is None or v.discharged_at_ms is None:
        return None
    return (v.admitted_at_ms, v.discharged_at_ms)
