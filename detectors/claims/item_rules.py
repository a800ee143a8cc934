"""Claim rules that read one settlement only (SPEC §7, §11): catalogue and stay checks.

Each function is named after its rule id, takes the rule's params (and the catalogue where
needed) and a :class:`~detectors.domain.Settlement`, and returns a :class:`Hit` or ``None``.
The caller checks ``params.enabled``. O(items) time, no state.
"""

from __future__ import annotations

from detectors.claims.hit import Hit, codes, hours
from detectors.domain import Settlement
from detectors.ruleset_parse import Catalogue
from detectors.ruleset_sections import (
    AgeRestrictedParams,
    ExcessiveExamsParams,
    GenderRestrictedParams,
    GhostBedParams,
    OverQuantityParams,
)

_GENDER_WORD = {"M": "male", "F": "female"}


def gender_restricted(
    params: GenderRestrictedParams, catalogue: Catalogue, s: Settlement
) -> Hit | None:
    """``claim.gender_restricted``: an item whose catalogue entry is for the other gender."""
    bad: dict[str, str] = {}
    for item in s.items:
        entry = catalogue.item(item.code)
        if entry is not None and entry.gender is not None and entry.gender != s.patient.gender:
            bad[item.code] = _label(catalogue, item.code, f"{_GENDER_WORD[entry.gender]} only")
    if not bad:
        return None
    return Hit("claim.gender_restricted", params.action,
               f"gender-restricted item for a {_GENDER_WORD.get(s.patient.gender, '?')} "
               f"patient: {codes(list(bad.values()))}", tuple(bad))


def age_restricted(params: AgeRestrictedParams, catalogue: Catalogue, s: Settlement) -> Hit | None:
    """``claim.age_restricted``: an item outside its catalogue age range (inclusive bounds)."""
    bad = []
    for item in s.items:
        entry = catalogue.item(item.code)
        if entry is not None and not entry.allows_age(s.patient.age):
            bad.append(item.code)
    if not bad:
        return None
    offending = tuple(dict.fromkeys(bad))
    labels = []
    for c in offending:
        e = catalogue.items[c]
        lo = "0" if e.min_age is None else str(e.min_age)
        hi = "" if e.max_age is None else str(e.max_age)
        labels.append(_label(catalogue, c, f"ages {lo}-{hi}" if hi else f"ages {lo}+"))
    return Hit("claim.age_restricted", params.action,
               f"age-restricted item for a patient aged {s.patient.age}: {codes(labels)}",
               offending)


def over_quantity(params: OverQuantityParams, catalogue: Catalogue, s: Settlement) -> Hit | None:
    """``claim.over_quantity``: drug ``days_supply`` over the limit (SPEC §11).

    Only outpatient visits and pharmacy sales; inpatient drug lines are exempt. The limit is
    ``chronic_days`` when any diagnosis is on the chronic list, else ``outpatient_days``
    (also for pharmacy sales without diagnoses). Lines without ``days_supply`` pass.
    """
    if s.visit.kind not in ("outpatient", "pharmacy"):
        return None
    chronic = any(catalogue.is_chronic(d) for d in s.visit.diagnoses)
    limit = params.chronic_days if chronic else params.outpatient_days
    bad = [i for i in s.items
           if i.category == "drug" and i.days_supply is not None and i.days_supply > limit]
    if not bad:
        return None
    detail = codes([f"{i.code} {i.days_supply} d" for i in bad])
    kind = "chronic-diagnosis" if chronic else "outpatient"
    return Hit("claim.over_quantity", params.action,
               f"drug supply over the {kind} limit of {limit} days: {detail}",
               tuple(dict.fromkeys(i.code for i in bad)))


def excessive_exams(params: ExcessiveExamsParams, s: Settlement) -> Hit | None:
    """``claim.excessive_exams``: one inpatient stay, summed quantity of an exam code > max."""
    if s.visit.kind != "inpatient":
        return None
    totals: dict[str, float] = {}
    for item in s.items:
        if item.category == "exam":
            totals[item.code] = totals.get(item.code, 0) + item.quantity
    bad = [(code, q) for code, q in totals.items() if q > params.max_quantity]
    if not bad:
        return None
    detail = codes([f"{code} x{q:g}" for code, q in bad])
    return Hit("claim.excessive_exams", params.action,
               f"exam charged more than {params.max_quantity} times in one stay: {detail}",
               tuple(code for code, _ in bad))


def ghost_bed(params: GhostBedParams, s: Settlement) -> Hit | None:
    """``claim.ghost_bed``: stay ≥ ``min_stay_hours`` with bed + service > share of total.

    Stay length is ``discharged_at − admitted_at``; the share compares exact fen against the
    share rounded to 6 decimals, so exactly 80 % does not hit.
    """
    v = s.visit
    if v.kind != "inpatient" or v.admitted_at_ms is None or v.discharged_at_ms is None:
        return None
    stay_ms = v.discharged_at_ms - v.admitted_at_ms
    if stay_ms < params.min_stay_hours * 3_600_000 or s.total_fen <= 0:
        return None
    lines = [i for i in s.items if i.category in ("bed", "service")]
    bed_service_fen = sum(i.amount_fen for i in lines)
    share_ppm = round(params.max_bed_service_share * 1_000_000)
    if bed_service_fen * 1_000_000 <= share_ppm * s.total_fen:
        return None
    return Hit("claim.ghost_bed", params.action,
               f"stay of {hours(stay_ms)} with bed + service "
               f"{bed_service_fen / s.total_fen:.1%} of the total "
               f"(limit {params.max_bed_service_share:.0%})",
               tuple(dict.fromkeys(i.code for i in lines)))


def _label(catalogue: Catalogue, code: str, limit: str) -> str:
    entry = catalogue.items[code]
    return f"{code} {entry.name} ({limit})" if entry.name else f"{code} ({limit})"
