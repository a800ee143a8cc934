"""The patient-scoped step of interception (SPEC §7): all claim rules but trace codes.

``patient_step(ruleset, history, settlement) -> (history', hits)`` evaluates the enabled
patient rules against the history *before* this settlement, then records it. It is
idempotent under at-least-once redelivery: a settlement id already in the history returns
the history unchanged and the hits stored when it was first applied, whatever rule set is
active now. ``evaluate_patient`` gives the same hits without a new state (``POST /v1/check``).

The history records every settlement whatever the rule switches, so enabling a rule later
sees the past. State size: O(``patient_history.max_entries``).
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.claims.hit import Hit
from detectors.claims.history import PatientHistory, local_date, summarize
from detectors.claims.item_rules import (
    age_restricted,
    excessive_exams,
    gender_restricted,
    ghost_bed,
    over_quantity,
)
from detectors.claims.patient_rules import (
    duplicate_item,
    impossible_travel,
    overlapping_stay,
    pharmacy_frequency,
    split_admission,
)
from detectors.domain import Settlement
from detectors.ruleset import RuleSet


def patient_step(
    ruleset: RuleSet, history: PatientHistory, s: Settlement
) -> tuple[PatientHistory, tuple[Hit, ...]]:
    """Apply settlement ``s`` to the patient's history; return the new history and hits."""
    prior = history.find(s.settlement_id)
    if prior is not None:
        return history, prior.hits
    day = local_date(ruleset.tz_for(s.region), s.settled_at_ms)
    hits = _evaluate(ruleset, history, s, day)
    entry = summarize(s, day, ruleset.claims.duplicate_item.categories, hits)
    keep = ruleset.patient_history
    return history.add(entry, keep.retention_ms, keep.max_entries), hits


def evaluate_patient(ruleset: RuleSet, history: PatientHistory, s: Settlement) -> tuple[Hit, ...]:
    """The hits ``patient_step`` would return for ``s``, leaving ``history`` as it is."""
    prior = history.find(s.settlement_id)
    if prior is not None:
        return prior.hits
    return _evaluate(ruleset, history, s, local_date(ruleset.tz_for(s.region), s.settled_at_ms))


def _evaluate(rs: RuleSet, h: PatientHistory, s: Settlement, day: str) -> tuple[Hit, ...]:
    """Enabled patient rules in SPEC §7 table order; one hit at most per rule."""
    c, cat = rs.claims, rs.catalogue
    checks: tuple[tuple[bool, Callable[[], Hit | None]], ...] = (
        (c.gender_restricted.enabled, lambda: gender_restricted(c.gender_restricted, cat, s)),
        (c.age_restricted.enabled, lambda: age_restricted(c.age_restricted, cat, s)),
        (c.duplicate_item.enabled, lambda: duplicate_item(c.duplicate_item, h, s, day)),
        (c.over_quantity.enabled, lambda: over_quantity(c.over_quantity, cat, s)),
        (c.split_admission.enabled, lambda: split_admission(c.split_admission, h, s)),
        (c.overlapping_stay.enabled, lambda: overlapping_stay(c.overlapping_stay, h, s)),
        (c.impossible_travel.enabled, lambda: impossible_travel(c.impossible_travel, h, s)),
        (c.pharmacy_frequency.enabled, lambda: pharmacy_frequency(c.pharmacy_frequency, h, s)),
        (c.excessive_exams.enabled, lambda: excessive_exams(c.excessive_exams, s)),
        (c.ghost_bed.enabled, lambda: ghost_bed(c.ghost_bed, s)),
    )
    return tuple(hit for enabled, rule in checks if enabled and (hit := rule()) is not None)
