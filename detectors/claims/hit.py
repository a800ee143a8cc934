"""A claim-rule hit (SPEC §7): the unit of a decision's ``hits`` array.

``items`` are the offending item codes or trace codes, ``related`` the other settlement
ids the hit names. Messages name items, institutions, regions and times, never the
patient id (SPEC §9: patient ids stay out of anything that may reach a log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    action: str
    message: str
    items: tuple[str, ...]
    related: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form, as in a decision's ``hits`` (``related`` only when non-empty)."""
        out: dict[str, Any] = {
            "rule": self.rule, "action": self.action, "message": self.message,
            "items": list(self.items),
        }
        if self.related:
            out["related"] = list(self.related)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        return cls(
            rule=d["rule"], action=d["action"], message=d["message"],
            items=tuple(d["items"]), related=tuple(d.get("related", ())),
        )


def hours(ms: int) -> str:
    """Human duration for messages: ``"36.5 h"``."""
    return f"{ms / 3_600_000:.1f} h"


def codes(items: tuple[str, ...] | list[str], limit: int = 5) -> str:
    """``"A, B, C"``; longer lists end with ``"… (+N)"``."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}… (+{len(items) - limit})"
