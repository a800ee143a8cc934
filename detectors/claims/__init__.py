"""Interception: the claim rules of SPEC §7 and the decision they make.

Rule functions are named after their SPEC rule ids (``claims.split_admission`` is
``claim.split_admission``). Patient-scoped rules run through :func:`patient_step` /
:func:`evaluate_patient` over a :class:`PatientHistory`; trace-code reuse runs through
:func:`trace_step` / :func:`evaluate_trace` over per-code :class:`TraceCodeState`; the
shell merges both hit lists and calls :func:`decide`.
"""

from detectors.claims.decision import decide
from detectors.claims.history import PatientHistory, SettlementSummary, local_date
from detectors.claims.hit import Hit
from detectors.claims.item_rules import (
    age_restricted,
    excessive_exams,
    gender_restricted,
    ghost_bed,
    over_quantity,
)
from detectors.claims.patient import evaluate_patient, patient_step
from detectors.claims.patient_rules import (
    duplicate_item,
    impossible_travel,
    overlapping_stay,
    pharmacy_frequency,
    split_admission,
)
from detectors.claims.trace import (
    TraceCodeState,
    evaluate_trace,
    trace_code_reuse,
    trace_codes,
    trace_expired,
    trace_step,
)

__all__ = [
    "Hit", "PatientHistory", "SettlementSummary", "TraceCodeState", "age_restricted", "decide",
    "duplicate_item", "evaluate_patient", "evaluate_trace", "excessive_exams",
    "gender_restricted", "ghost_bed", "impossible_travel", "local_date", "over_quantity",
    "overlapping_stay", "patient_step", "pharmacy_frequency", "split_admission",
    "trace_code_reuse", "trace_codes", "trace_expired", "trace_step",
]
