"""The claim rules run in-process over settlements in arrival order (no Kafka).

The reference for the quality tests and the streaming shell: per settlement, the patient
rules over the patient's history, then trace-code reuse over the codes' states, merged
into one decision exactly as the shell does.
"""

from __future__ import annotations

from typing import Iterable

from detectors.claims.decision import decide
from detectors.claims.history import PatientHistory
from detectors.claims.hit import Hit
from detectors.claims.patient import patient_step
from detectors.claims.trace import TraceCodeState, trace_codes, trace_step
from detectors.domain import Settlement
from detectors.ruleset import RuleSet


def run_claims(settlements: Iterable[Settlement], ruleset: RuleSet
               ) -> dict[str, tuple[str, tuple[Hit, ...]]]:
    """settlement_id → (decision, hits) for every settlement, in arrival order."""
    histories: dict[str, PatientHistory] = {}
    codes: dict[str, TraceCodeState] = {}
    out: dict[str, tuple[str, tuple[Hit, ...]]] = {}
    params = ruleset.claims.trace_code_reuse
    for s in settlements:
        history = histories.get(s.patient.id) or PatientHistory()
        histories[s.patient.id], hits = patient_step(ruleset, history, s)
        states = {c: codes.get(c) for c in trace_codes(s)}
        new_states, trace_hit = trace_step(params, states, s)
        codes.update(new_states)
        all_hits = hits + ((trace_hit,) if trace_hit is not None else ())
        out[s.settlement_id] = (decide(all_hits), all_hits)
    return out
