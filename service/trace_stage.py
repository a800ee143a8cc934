"""Trace-code hops of the claims stage (SPEC §7 ``claim.trace_code_reuse``).

A settlement's codes may live in several partitions of the trace claims (keyed by
code). The hop message visits those partitions one at a time, in ascending order
(``route``); each hop claims the codes living in its partition with ``trace_step`` (state
written in the event's own changelog partition, so the owner of the code is the only
writer) and adds their claims *before* this settlement (``pre``) to the message. The last
hop evaluates the rule over all codes at once (``evaluate_trace``: reuse across and within
the settlement) and emits the decision with the patient hits carried from the first stage.

Each code is read and written atomically by its owner, so two settlements racing for one
code see a single first claimant, whatever the number of workers. A redelivered hop finds
its own claims, which never count as reuse, and re-emits the same decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from detectors.claims import Hit, TraceCodeState

from .claims_state import (
    TRACE_TABLE,
    combine,
    distinct_codes,
    error_reporter,
    partition_for,
    trace_claims,
    trace_hit,
)

if TYPE_CHECKING:
    from .claims_stage import ClaimsStage


async def trace_hop(stage: ClaimsStage, value: bytes | dict, partition: int) -> None:
    """One hop at ``partition``: claim the local codes, then forward or decide."""
    msg = value if isinstance(value, dict) else orjson.loads(value)
    s = stage.settlement(msg)
    if s is None:
        return
    params = stage.rt.ruleset.claims.trace_code_reuse
    on_error = error_reporter(stage.rt.metrics, s.settlement_id)
    here = [c for c in distinct_codes(s) if partition_for(c, stage.partitions) == partition]
    try:
        before = stage.states(here)
    except Exception as exc:  # noqa: BLE001 - unreadable state: treat as unclaimed
        on_error("other", exc)
        before = dict.fromkeys(here)
    claims = trace_claims(params, before, s, on_error)
    for code in here:
        new = claims.get(code)
        if new is not None and new != before[code]:
            stage.traces[code] = new.to_dict()
    pre = msg["pre"]
    for code in here:
        state = before[code]
        pre[code] = state.to_dict() if state is not None else None
    stage.seen(TRACE_TABLE, partition, s.settled_at_ms)
    rest = [q for q in msg["route"] if q > partition]
    if rest:
        await stage.out.trace(rest[0], s.settlement_id.encode(), orjson.dumps(msg))
        return
    states = {c: TraceCodeState.from_dict(v) if v else None for c, v in pre.items()}
    hit = trace_hit(params, states, s, on_error)
    hits = combine(hit, (Hit.from_dict(h) for h in msg["hits"]))
    await stage.emit(s, hits, msg["v"], msg.get("ts"))
