"""``claim.trace_code_reuse`` (SPEC §7): a drug traceability code settled twice.

Every box of a drug carries one traceability code; a code settled again (by another
settlement, or twice within one settlement) means a box resold (回流药). State is one
:class:`TraceCodeState` per code: the settlement that first claimed it and when, O(1).
A state older than ``retention_days`` before the arriving settlement counts as absent and
is replaced. ``trace_step`` is idempotent: re-applying a settlement finds its own claims and
the same earlier claims, so it returns the same states and the same hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.claims.hit import Hit, codes
from detectors.domain import Settlement
from detectors.ruleset_sections import TraceCodeReuseParams


@dataclass(frozen=True, slots=True)
class TraceCodeState:
    """The settlement that claimed a trace code first."""

    settlement_id: str
    settled_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.settlement_id, "at_ms": self.settled_at_ms}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceCodeState:
        return cls(settlement_id=d["id"], settled_at_ms=d["at_ms"])


def trace_codes(s: Settlement) -> tuple[str, ...]:
    """All trace codes of the settlement's items, in line order, repeats included."""
    return tuple(code for item in s.items for code in item.trace_codes)


def trace_expired(params: TraceCodeReuseParams, state: TraceCodeState, now_ms: int) -> bool:
    """Whether a stored claim is older than the retention at event time ``now_ms``."""
    return state.settled_at_ms < now_ms - params.retention_ms


def trace_code_reuse(
    params: TraceCodeReuseParams, states: Mapping[str, TraceCodeState | None], s: Settlement
) -> Hit | None:
    """The reuse hit of ``s`` given the current claims of its codes (missing = unclaimed)."""
    seen: set[str] = set()
    within: list[str] = []
    earlier: dict[str, str] = {}
    for code in trace_codes(s):
        if code in seen:
            if code not in within:
                within.append(code)
            continue
        seen.add(code)
        state = states.get(code)
        if (state is not None and state.settlement_id != s.settlement_id
                and not trace_expired(params, state, s.settled_at_ms)):
            earlier[code] = state.settlement_id
    if not within and not earlier:
        return None
    related = tuple(dict.fromkeys(earlier.values()))
    parts = []
    if earlier:
        parts.append(f"already settled in {codes(list(related))}: {codes(list(earlier))}")
    if within:
        parts.append(f"repeated within this settlement: {codes(within)}")
    items = tuple(dict.fromkeys([*earlier, *within]))
    return Hit("claim.trace_code_reuse", params.action,
               "drug traceability code reused, " + "; ".join(parts), items, related)


def trace_step(
    params: TraceCodeReuseParams, states: Mapping[str, TraceCodeState | None], s: Settlement
) -> tuple[dict[str, TraceCodeState], Hit | None]:
    """New states for every code ``s`` claims, and its hit (``None`` if disabled or clean).

    A code held by another live settlement keeps that claim (the first settlement stays
    the reference); an unclaimed or expired code is claimed by ``s``. States are recorded
    even when the rule is disabled, so enabling it later sees the past.
    """
    new: dict[str, TraceCodeState] = {}
    for code in trace_codes(s):
        if code in new:
            continue
        state = states.get(code)
        if state is None or trace_expired(params, state, s.settled_at_ms):
            state = TraceCodeState(s.settlement_id, s.settled_at_ms)
        new[code] = state
    return new, evaluate_trace(params, states, s)


def evaluate_trace(
    params: TraceCodeReuseParams, states: Mapping[str, TraceCodeState | None], s: Settlement
) -> Hit | None:
    """The hit ``trace_step`` would return, without new states (``POST /v1/check``)."""
    return trace_code_reuse(params, states, s) if params.enabled else None
