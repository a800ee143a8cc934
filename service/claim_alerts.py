"""Claim alerts: one SPEC §6 alert per hit of a decision (SPEC §7, §11 "Alert entity").

The entity is the patient (pseudonymised upstream: allowed on ``alerts`` and ``decisions``,
never in logs or metric labels). ``period`` is the local date of ``settled_at`` in the
region's time zone; ``level`` maps the hit's action (block → red, warn → yellow). The
``alert_id`` hashes rule, ``"patient"``, ``patient id|settlement id``, visit kind, period and
level, so it is stable per settlement: a redelivered settlement re-emits the same ids and
consumers deduplicate on (``alert_id``, ``status``). ``emitted_at`` is stamped by the sender.
"""

from __future__ import annotations

from typing import Any

from detectors.alert_identity import alert_id
from detectors.claims import Hit, local_date
from detectors.domain import Settlement

LEVELS = {"block": "red", "warn": "yellow"}


def claim_alert(hit: Hit, s: Settlement, rules_version: str, zone: str) -> dict[str, Any]:
    """The ``alerts`` record of one claim hit, without ``emitted_at``.

    Args:
        hit: a hit of the settlement's decision.
        s: the settlement that got it.
        rules_version: version of the rule set that decided.
        zone: IANA time zone of the settlement's region (``RuleSet.tz_for``).
    """
    level = LEVELS[hit.action]
    period = local_date(zone, s.settled_at_ms)
    identity = f"{s.patient.id}|{s.settlement_id}"
    return {
        "alert_id": alert_id(hit.rule, "patient", identity, s.visit.kind, period, level),
        "status": "firing",
        "level": level,
        "rule": hit.rule,
        "rules_version": str(rules_version),
        "entity": {"kind": "patient", "id": s.patient.id, "institution_id": s.institution.id,
                   "region": s.region},
        "visit_kind": s.visit.kind,
        "period": period,
        "evidence": {"settlement_ids": [s.settlement_id, *hit.related],
                     "action": hit.action, "message": hit.message, "items": list(hit.items)},
        "event_time": s.settled_at.isoformat(),
    }
