"""Comparing a crashed run with a clean one: decisions (against the claims stage replayed
on the run's own arrival order), DLQ, alerts, final table state, worker logs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import orjson

from service.settings import Settings
from support.crash_feed import Feed
from support.crash_run import RunResult
from support.crash_watch import read_partitions

# ---- comparing runs ------------------------------------------------------------------------


def decision_view(d: dict) -> tuple:
    """What must be identical between runs for one settlement: the decision, the rules
    version, and every hit (rule, action, message, items, related)."""
    return (d["decision"], d["rules_version"], json.dumps(d["hits"], sort_keys=True))


def alert_families(alerts: list[dict]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for a in alerts:
        out[a["rule"].split(".", 1)[0]].add((a["alert_id"], a["status"]))
    return dict(out)


def diff_state(clean: dict[Any, Any], crashed: dict[Any, Any], limit: int = 3) -> list[str]:
    """Human-readable differences between two final changelog states."""
    problems = []
    missing = sorted(set(clean) - set(crashed), key=str)
    extra = sorted(set(crashed) - set(clean), key=str)
    if missing:
        problems.append(f"{len(missing)} keys missing, e.g. {missing[:limit]}")
    if extra:
        problems.append(f"{len(extra)} extra keys, e.g. {extra[:limit]}")
    differ = sorted((k for k in set(clean) & set(crashed) if clean[k] != crashed[k]), key=str)
    if differ:
        examples = [f"{k!r}:\n  clean   {clean[k]}\n  crashed {crashed[k]}"
                    for k in differ[:limit]]
        problems.append(f"{len(differ)} keys differ, e.g.\n" + "\n".join(examples))
    return problems


# ---- claims: the run's own arrival order, replayed in-process -------------------------------

# Claim rules whose hit depends on which of a patient's (or a code's) settlements arrived
# first: the hit goes to the later arrival (detectors.claims.patient_rules, .trace). After a
# failover the partitions of the dead worker wait ~10 s while the survivor runs ahead, so
# their settlements reach the patient/trace stages in another order than in a clean run,
# and e.g. the *other* settlement of a reused trace code gets the block. Legitimate; these
# decisions are checked against the run's own arrival order instead.
ORDER_RULES = frozenset({"claim.trace_code_reuse", "claim.duplicate_item",
                         "claim.split_admission", "claim.overlapping_stay",
                         "claim.impossible_travel", "claim.pharmacy_frequency"})

@dataclass
class ClaimsReplay:
    """What the claims stage must have produced, given the order its inputs arrived in."""

    decisions: dict[str, dict]
    alert_keys: set[tuple[str, str]]
    histories: dict[str, Any]
    traces: dict[str, Any]


class _Capture:
    def __init__(self) -> None:
        self.decisions: dict[str, dict] = {}
        self.alerts: set[tuple[str, str]] = set()
        self.hops: list[tuple[int, bytes]] = []

    async def trace(self, partition: int, key: bytes, value: bytes) -> None:
        self.hops.append((partition, value))

    async def decision(self, key: bytes, value: bytes) -> None:
        self.decisions.setdefault(key.decode(), orjson.loads(value))

    async def alert(self, key: bytes, value: bytes) -> None:
        a = orjson.loads(value)
        self.alerts.add((a["alert_id"], a["status"]))


def replay_claims(settings: Settings) -> ClaimsReplay:
    """Run the claims stage in-process (``ClaimsStage`` over dicts) on the arrival order the
    run's internal topics recorded, taking only the *order* from the run: every hop's
    content (patient hits, the claims seen at earlier hops) is recomputed here, so lost or
    doubly applied state in the run cannot hide. A redelivered copy finds its own entry and
    changes nothing, as the real stage must. Partitions are independent (a patient's
    history lives in one partition, a code's claim in one), so any schedule that keeps each
    partition's order and each settlement's hop order gives the same result."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from service import metrics
    from service.batching import items_of
    from service.claims_stage import ClaimsStage
    from service.claims_state import PATIENT_TOPIC, TRACE_TOPIC
    from service.rules_io import DEFAULT_RULES_PATH, load_ruleset_file
    from service.runtime import Runtime

    by_patient = f"{settings.app_id}-{PATIENT_TOPIC}"
    by_trace = f"{settings.app_id}-{TRACE_TOPIC}"
    # Internal messages are batches (JSON arrays): replay their items one by one, in order.
    topics = {t: {q: [orjson.dumps(item) for v in values for item in items_of(v)]
                  for q, values in parts.items()}
              for t, parts in read_partitions(settings, [by_patient, by_trace]).items()}
    rt = Runtime(settings=settings, metrics=metrics.create(CollectorRegistry()),
                 ruleset=load_ruleset_file(settings.rules_file or DEFAULT_RULES_PATH))
    out = _Capture()
    histories: dict[str, Any] = {}
    traces: dict[str, Any] = {}
    stage = ClaimsStage(rt, histories, traces, out)

    def sid_of(value: bytes) -> str:
        return orjson.loads(orjson.loads(value)["raw"])["settlement_id"]

    async def go() -> None:
        # Patient hops: every partition in order; remember the first hop each settlement
        # would send on (content recomputed here).
        made: dict[tuple[str, int], bytes] = {}
        for q in sorted(topics[by_patient]):
            for value in topics[by_patient][q]:
                out.hops.clear()
                await stage.on_patient(value, q)
                for p, hop in out.hops:
                    made.setdefault((sid_of(hop), p), hop)
        # Trace hops: advance any partition whose next message's previous hop is done.
        queues = {q: list(v) for q, v in topics[by_trace].items()}
        heads = dict.fromkeys(queues, 0)
        while any(heads[q] < len(queues[q]) for q in queues):
            progressed = False
            for q in sorted(queues):
                while heads[q] < len(queues[q]):
                    sid = sid_of(queues[q][heads[q]])
                    hop = made.get((sid, q))
                    if hop is None:
                        break  # its previous hop (another partition) is not replayed yet
                    out.hops.clear()
                    await stage.on_trace(hop, q)
                    for p, nxt in out.hops:
                        made.setdefault((sid, p), nxt)
                    heads[q] += 1
                    progressed = True
            if not progressed:
                stuck = {q: sid_of(queues[q][heads[q]]) for q in queues
                         if heads[q] < len(queues[q])}
                raise AssertionError(f"trace hops with no earlier hop in the run: {stuck}")

    asyncio.run(go())
    return ClaimsReplay(out.decisions, out.alerts, orjson.loads(orjson.dumps(histories)),
                        orjson.loads(orjson.dumps(traces)))


# ---- the verdict ---------------------------------------------------------------------------


def _order_free(d: dict) -> str:
    return json.dumps([h for h in d["hits"] if h["rule"] not in ORDER_RULES], sort_keys=True)


def check(feed: Feed, clean: RunResult, run: RunResult, replay: ClaimsReplay,
          label: str) -> list[str]:
    """Every way ``run`` (killed) differs from ``clean`` where it must not; [] = none.

    - inputs: every valid settlement has a decision, every defective one a DLQ record
      with the right reason, no input in both, nothing else;
    - decisions: every copy equals the claims stage replayed on the run's own arrival order
      (``replay_claims``); hits of order-free rules equal the clean run's;
    - alerts: peer and fund (alert_id, status) sets equal the clean run's; claim alerts
      equal the replay's;
    - state: final changelog values equal the clean run's for the entity-month,
      scope-month and settlement-id tables; patient histories and trace claims have the
      clean run's keys and the replay's values (their stored hits and first claimants
      follow arrival order). No field is excluded: no table stores a wall-clock stamp;
    - logs: no worker read offsets with a hole (``offsets jumped``: state can match by
      luck while a message went undelivered).
    """
    problems: list[str] = [f"[{label}] table recovery cut short: {p}" for p in run.recovery]
    for worker in run.workers:
        log_text = worker.log_path.read_text(errors="replace") if worker.log_path else ""
        jumps = [line for line in log_text.splitlines() if "offsets jumped" in line]
        if jumps:
            problems.append(f"[{label}] {worker.log_path}: reads jumped: {jumps[:3]}")
    if run.probe and (run.probe["duplicates"] != run.probe["sent"]
                      or run.probe["decided_again"] or run.probe["other_dlq"]):
        problems.append(f"[{label}] every valid settlement sent again must be rejected as a "
                        f"duplicate: {run.probe}")

    def fail(what: str, items: list) -> None:
        if items:
            problems.append(f"[{label}] {what}: {len(items)}, e.g. {items[:3]}")

    decided = set(run.decisions)
    fail("valid settlements without a decision", sorted(feed.valid_ids - decided))
    fail("decisions for unknown ids", sorted(decided - feed.valid_ids))
    reasons = Counter(v["reason"] for v in run.dlq.values())
    if reasons != feed.dlq_reasons:
        problems.append(f"[{label}] DLQ reasons {dict(reasons)} != {dict(feed.dlq_reasons)}")
    if {k: v["reason"] for k, v in run.dlq.items()} != {
            k: v["reason"] for k, v in clean.dlq.items()}:
        problems.append(f"[{label}] DLQ records (source, reason) differ from the clean run")
    if len(decided) + len(run.dlq) != feed.total:
        problems.append(f"[{label}] {len(decided)} decided + {len(run.dlq)} in the DLQ "
                        f"!= {feed.total} inputs")

    fail("decision copies that differ from the arrival-order replay", sorted(
        (sid, decision_view(d)[0]) for sid, ds in run.decisions.items() for d in ds
        if sid in replay.decisions and decision_view(d) != decision_view(replay.decisions[sid])))
    fail("decided in the run but not in the replay", sorted(decided - set(replay.decisions)))
    fail("order-free hits that differ from the clean run", sorted(
        sid for sid, ds in run.decisions.items()
        if sid in clean.decisions and _order_free(ds[0]) != _order_free(clean.decisions[sid][0])))

    got, want = alert_families(run.alerts), alert_families(clean.alerts)
    for family in ("peer", "fund"):
        g, w = got.get(family, set()), want.get(family, set())
        fail(f"{family} alerts missing (alert_id, status)", sorted(w - g))
        fail(f"{family} alerts extra (alert_id, status)", sorted(g - w))
    g = got.get("claim", set())
    fail("claim alerts missing vs replay", sorted(replay.alert_keys - g))
    fail("claim alerts extra vs replay", sorted(g - replay.alert_keys))

    for table in ("entity-months-v1", "fund-months-v1", "settlement-ids-v1"):
        for p in diff_state(clean.state[table], run.state[table]):
            problems.append(f"[{label}] {table}: {p}")
    for table, expected in (("patient-history-v1", replay.histories),
                            ("trace-code-batches-v1", replay.traces)):
        if set(run.state[table]) != set(clean.state[table]):
            problems.append(f"[{label}] {table}: keys differ from the clean run")
        for p in diff_state(expected, run.state[table]):
            problems.append(f"[{label}] {table} vs replay: {p}")
    return problems


def summary(feed: Feed, clean: RunResult, run: RunResult) -> dict[str, Any]:
    """Numbers for the log: copies re-sent, decisions that followed another arrival order."""
    order_diff = sum(1 for sid, ds in run.decisions.items() if sid in clean.decisions
                     and decision_view(ds[0]) != decision_view(clean.decisions[sid][0]))
    return {"inputs": feed.total, "seconds": round(run.seconds, 1),
            "timings": {k: round(v, 1) for k, v in run.timings.items()},
            "kills": [{k: v for k, v in kill.items() if k != "ends"} for kill in run.kills],
            "recovery_checked": sum(1 for kill in run.kills if "ends" in kill),
            "probe": run.probe,
            "decision_copies": sum(len(v) for v in run.decisions.values()),
            "alert_copies": len(run.alerts), "dlq_copies": run.dlq_copies,
            "decisions_in_another_arrival_order": order_diff}
