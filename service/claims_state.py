"""Claim evaluation shared by the claims stage and ``POST /v1/check`` (SPEC §7, §9).

- :func:`partition_for`: the partition a key lives in, computed exactly as the producer does
  for a message keyed by that key (murmur2 of its UTF-8 bytes, like aiokafka's
  ``DefaultPartitioner`` and the Java client). Table state is written in the changelog
  partition of the event being processed, so a patient's history lives in
  ``partition_for(patient id)`` and a trace code's claim in ``partition_for(code)`` (inside
  that partition's batch records, :mod:`service.claim_log`).
  (Faust's ``router.key_store`` hashes the *table-serialised* key — JSON, with quotes — and
  would name the wrong owner: do not use it for these tables.)
- Guarded evaluation: a claim rule that raises is counted in
  ``fund_sentinel_rule_errors_total{rule}`` and logged (rule, exception type and where,
  settlement id — never the exception text, which could carry patient data), and the
  settlement is decided on the other rules. The worker never stops on a rule bug.
- :func:`combine`: the hit order of a decision — trace-code reuse first, then the patient
  rules in SPEC §7 table order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping

from aiokafka.partitioner import murmur2

from detectors.claims import (
    Hit,
    PatientHistory,
    TraceCodeState,
    evaluate_patient,
    evaluate_trace,
    patient_step,
    trace_codes,
    trace_step,
)
from detectors.domain import Settlement
from detectors.ruleset import CLAIM_RULES, RuleSet
from detectors.ruleset_sections import TraceCodeReuseParams

from .metrics import Metrics

log = logging.getLogger(__name__)

PATIENT_TOPIC = "claims-by-patient-v1"  # internal topics carry the app id in front
TRACE_TOPIC = "claims-by-trace-v1"
HISTORY_TABLE = "patient-history-v1"
TRACE_TABLE = "trace-code-batches-v1"  # service.claim_log: one record per batch
TRACE_RULE = "claim.trace_code_reuse"
PATIENT_RULES = tuple(r for r in CLAIM_RULES if r != TRACE_RULE)
OnError = Callable[[str, BaseException], None]
States = Mapping[str, TraceCodeState | None]


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: str, partitions: int) -> int:
    """Partition of a message keyed by ``key`` (UTF-8) among ``partitions`` partitions.

    Cached: murmur2 is pure Python and a trace code's partition is asked at its patient
    hop, at every trace hop of its settlement and by the claim log."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def distinct_codes(s: Settlement) -> tuple[str, ...]:
    """The settlement's trace codes, first occurrence order, without repeats."""
    return tuple(dict.fromkeys(trace_codes(s)))


def error_reporter(metrics: Metrics, settlement_id: str) -> OnError:
    """Count and log a rule failure on one settlement (no patient data in the log line)."""

    def report(rule: str, exc: BaseException) -> None:
        metrics.rule_errors.labels(rule=rule).inc()
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        log.error("claim rule %s raised %s%s on settlement %s; decided on the other rules",
                  rule, type(exc).__name__, where, settlement_id)

    return report


def without(rs: RuleSet, rule_ids: Iterable[str]) -> RuleSet:
    """``rs`` with the given claim rules switched off."""
    changes = {}
    for rule in rule_ids:
        name = CLAIM_RULES[rule][0]
        changes[name] = dataclasses.replace(getattr(rs.claims, name), enabled=False)
    return dataclasses.replace(rs, claims=dataclasses.replace(rs.claims, **changes))


def _evaluate_only(rs: RuleSet, h: PatientHistory, s: Settlement
                   ) -> tuple[PatientHistory, tuple[Hit, ...]]:
    return h, evaluate_patient(rs, h, s)


def patient_hits(rs: RuleSet, history: PatientHistory, s: Settlement, on_error: OnError,
                 apply: bool = True) -> tuple[PatientHistory, tuple[Hit, ...]]:
    """``patient_step`` (``apply``) or ``evaluate_patient`` with failing rules isolated.

    On an exception, each enabled patient rule is tried alone to find the failing ones,
    which are reported and switched off for this settlement; if the step fails even with
    every patient rule off, the history stays as it is and there are no patient hits.
    """
    step = patient_step if apply else _evaluate_only
    try:
        return step(rs, history, s)
    except Exception as exc:  # noqa: BLE001 - a rule bug must not stop the worker
        first = exc
    enabled = [r for r in PATIENT_RULES if rs.is_enabled(r)]
    try:
        _evaluate_only(without(rs, enabled), history, s)
    except Exception:  # noqa: BLE001 - not a rule: the step itself fails
        on_error("other", first)
        return history, ()
    failing = []
    for rule in enabled:
        try:
            _evaluate_only(without(rs, [r for r in enabled if r != rule]), history, s)
        except Exception as exc:  # noqa: BLE001
            failing.append(rule)
            on_error(rule, exc)
    try:
        return step(without(rs, failing), history, s)
    except Exception as exc:  # noqa: BLE001 - failures that only show in combination
        on_error("other", exc)
        return history, ()


def trace_claims(params: TraceCodeReuseParams, states: States, s: Settlement,
                 on_error: OnError) -> dict[str, TraceCodeState]:
    """The new claims of ``trace_step`` (nothing recorded if it raises)."""
    try:
        return trace_step(params, states, s)[0]
    except Exception as exc:  # noqa: BLE001
        on_error(TRACE_RULE, exc)
        return {}


def trace_hit(params: TraceCodeReuseParams, states: States, s: Settlement,
              on_error: OnError) -> Hit | None:
    """``evaluate_trace`` over the claims of *all* the settlement's codes."""
    try:
        return evaluate_trace(params, states, s)
    except Exception as exc:  # noqa: BLE001
        on_error(TRACE_RULE, exc)
        return None


def combine(trace: Hit | None, patient: Iterable[Hit]) -> tuple[Hit, ...]:
    return ((trace,) if trace is not None else ()) + tuple(patient)


def check_hits(rs: RuleSet, history: PatientHistory, states: States, s: Settlement,
               on_error: OnError) -> tuple[Hit, ...]:
    """The hits the pipeline would give ``s`` against this state, changing nothing."""
    _, patient = patient_hits(rs, history, s, on_error, apply=False)
    return combine(trace_hit(rs.claims.trace_code_reuse, states, s, on_error), patient)
