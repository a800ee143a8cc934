"""Alert identity and the SPEC §6 envelope of peer-comparison cards.

``alert_id`` is a fingerprint of the identity fields only (rule, entity kind, entity id,
visit kind, period, level), like Alertmanager's label fingerprint: the first 32 hex digits
(128 bits) of SHA-256 over the fields ``|``-joined with ``\\`` escaping
(:func:`detectors.entities.join_fields`), so ``("a|b", "c")`` and ``("a", "b|c")`` differ.
The firing and the resolved alert of one card share it; consumers deduplicate on
(``alert_id``, ``status``).

Department and doctor ids are only unique within an institution (SPEC §11), so for those
kinds the hashed entity id is ``institution_id`` and ``id`` joined
(:func:`entity_identity`): H0007's and H0012's "SURG1" get different alert ids. The
envelope still shows ``entity.id`` = the department id and ``entity.institution_id``.

:func:`card_alert` leaves ``emitted_at`` out: the shell stamps it when it sends. Rounding:
``observed``/``peer_mean`` 2 decimals for cost per visit (yuan), 4 for drug ratio (a
fraction; 2 decimals would hide the difference between 0.452 and 0.448); ``ratio`` 3
decimals; ``p_value`` 3 significant digits.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from detectors.cards import CardChange
from detectors.entities import join_fields

ALERT_ID_HEX = 32
_OBSERVED_DIGITS = {"peer.cost_per_visit": 2, "peer.drug_ratio": 4}


class EntityLike(Protocol):
    kind: str
    id: str
    institution_id: str
    region: str


def alert_id(rule: str, entity_kind: str, entity_id: str, visit_kind: str, period: str,
             level: str) -> str:
    """Stable 32-hex-digit fingerprint of an alert's identity fields."""
    text = join_fields(rule, entity_kind, entity_id, visit_kind, period, level)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ALERT_ID_HEX]


def entity_identity(entity: EntityLike) -> str:
    """The entity id that goes into :func:`alert_id` (institution-qualified when needed)."""
    if entity.kind in ("department", "doctor"):
        return join_fields(entity.institution_id, entity.id)
    return entity.id


def _p(p: float | None) -> float | None:
    return None if p is None else float(f"{p:.3g}")


def card_alert(change: CardChange, rules_version: str, entity: EntityLike, visit_kind: str,
               period: str) -> dict[str, Any]:
    """The SPEC §6 alert for one card change, without ``emitted_at``.

    Args:
        change: from :func:`detectors.cards.card_step`.
        rules_version: version of the rule set that produced it.
        entity: the card's entity (``kind``, ``id``, ``institution_id``, ``region``).
        visit_kind: ``outpatient`` / ``inpatient`` / ``pharmacy``.
        period: the card's month ``"YYYY-MM"``.

    Returns:
        A dict of plain JSON types, keys in SPEC order.
    """
    ev = change.evidence
    digits = _OBSERVED_DIGITS[change.rule]
    return {
        "alert_id": alert_id(change.rule, entity.kind, entity_identity(entity), visit_kind,
                             period, change.level),
        "status": change.status,
        "level": change.level,
        "rule": change.rule,
        "rules_version": str(rules_version),
        "entity": {"kind": entity.kind, "id": entity.id,
                   "institution_id": entity.institution_id, "region": entity.region},
        "visit_kind": visit_kind,
        "period": period,
        "observed": round(ev.observed, digits),
        "peer_mean": round(ev.peer_mean, digits),
        "ratio": round(ev.ratio, 3),
        "threshold": change.threshold,
        "n": ev.n,
        "peer_entities": ev.peer_entities,
        "consecutive_months": ev.consecutive_months,
        "evidence": {"settlement_ids": list(ev.settlement_ids), "p_value": _p(ev.p_value)},
        "event_time": ev.event_time,
    }
