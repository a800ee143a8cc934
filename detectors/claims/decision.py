"""The decision of a settlement from its hits (SPEC §7): block wins over warn over pass."""

from __future__ import annotations

from collections.abc import Iterable

from detectors.claims.hit import Hit


def decide(hits: Iterable[Hit]) -> str:
    """``"block"`` if any hit blocks, else ``"warn"`` if any hit, else ``"pass"``."""
    decision = "pass"
    for hit in hits:
        if hit.action == "block":
            return "block"
        decision = "warn"
    return decision
