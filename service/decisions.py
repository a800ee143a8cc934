"""Decision records (SPEC §7) as they go on the ``decisions`` topic."""

from __future__ import annotations

from detectors.domain import Settlement


def decision_record(settlement: Settlement, rules_version: str) -> dict:
    return {"settlement_id": settlement.settlement_id, "decision": "pass",
            "rules_version": rules_version, "hits": []}
