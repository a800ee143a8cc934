"""Settlement-id deduplication under at-least-once delivery (SPEC §9).

A settlement_id seen again is either a *redelivery* of the very same Kafka message (same
origin partition and offset: the worker crashed before committing, the output must be
re-emitted, not rejected) or a *duplicate* (another message with the same id: DLQ).
State per id is O(1): origin coordinates and event time, pruned after the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Seen(Enum):
    NEW = "new"
    REDELIVERY = "redelivery"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a settlement message sits in the input topic; carried through every hop."""

    partition: int
    offset: int

    def to_list(self) -> list[int]:
        return [self.partition, self.offset]

    @classmethod
    def from_list(cls, value: list[int]) -> "Origin":
        return cls(int(value[0]), int(value[1]))


@dataclass(frozen=True, slots=True)
class SeenId:
    origin: Origin
    settled_at_ms: int

    def to_dict(self) -> dict:
        return {"o": self.origin.to_list(), "t": self.settled_at_ms}

    @classmethod
    def from_dict(cls, d: dict) -> "SeenId":
        return cls(Origin.from_list(d["o"]), int(d["t"]))


def classify(previous: SeenId | None, origin: Origin, settled_at_ms: int,
             window_ms: int) -> Seen:
    """Is this message new, a redelivery of the same message, or a duplicate id?

    A previous sighting older than the window (in event time, relative to this event) no
    longer counts: the id is treated as new, as SPEC §9's deduplication window says.
    """
    if previous is None:
        return Seen.NEW
    if previous.origin == origin:
        return Seen.REDELIVERY
    if abs(settled_at_ms - previous.settled_at_ms) > window_ms:
        return Seen.NEW
    return Seen.DUPLICATE


def expired(entry: SeenId, watermark_ms: int, window_ms: int) -> bool:
    """True when an entry can be dropped: older than the window behind the newest event."""
    return entry.settled_at_ms < watermark_ms - window_ms
