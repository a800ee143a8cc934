"""Decision records (SPEC §7) as they go on the ``decisions`` topic and answer ``/v1/check``.

``schemas/decision.schema.json``: ``decision`` is the most severe action among the hits
(:func:`detectors.claims.decide`); ``hits`` keep the order they were evaluated in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detectors.claims import Hit, decide
from detectors.domain import Settlement


def decision_record(settlement: Settlement, rules_version: str,
                    hits: Sequence[Hit] = ()) -> dict[str, Any]:
    return {"settlement_id": settlement.settlement_id, "decision": decide(hits),
            "rules_version": str(rules_version), "hits": [h.to_dict() for h in hits]}
