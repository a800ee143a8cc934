"""Per-patient history for the stateful claim rules (SPEC §7, §11).

A :class:`PatientHistory` holds compact :class:`SettlementSummary` entries of the patient's
recent settlements, sorted by event time: what the pairwise rules compare (region,
institution, visit kind, stay interval, local calendar day and the exam/treatment/service
codes for ``claim.duplicate_item``) and the hits that settlement got, so that a redelivered
settlement re-emits the identical decision.

State size is bounded: entries older than ``retention_ms`` before the newest event time
seen are dropped, and at most ``max_entries`` are kept (oldest first out). A typical entry
is ~120 bytes of JSON; ``to_dict``/``from_dict`` round-trip through plain JSON types.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.claims.hit import Hit
from detectors.domain import Settlement


@dataclass(frozen=True, slots=True)
class SettlementSummary:
    """What the patient rules need to remember of one applied settlement."""

    settlement_id: str
    settled_at_ms: int
    region: str
    institution_id: str
    visit_kind: str
    local_date: str  # settled_at as YYYY-MM-DD in the region's time zone
    admitted_at_ms: int | None = None
    discharged_at_ms: int | None = None
    codes: tuple[str, ...] = ()  # sorted distinct codes watched by claim.duplicate_item
    hits: tuple[Hit, ...] = ()  # the patient-rule hits this settlement got when applied

    @property
    def stay(self) -> tuple[int, int] | None:
        """``(admitted_at_ms, discharged_at_ms)`` of an inpatient stay, else ``None``."""
        if self.admitted_at_ms is None or self.discharged_at_ms is None:
            return None
        return (self.admitted_at_ms, self.discharged_at_ms)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.settlement_id, "at_ms": self.settled_at_ms, "region": self.region,
            "inst": self.institution_id, "kind": self.visit_kind, "date": self.local_date,
        }
        if self.admitted_at_ms is not None:
            d["adm_ms"] = self.admitted_at_ms
        if self.discharged_at_ms is not None:
            d["dis_ms"] = self.discharged_at_ms
        if self.codes:
            d["codes"] = list(self.codes)
        if self.hits:
            d["hits"] = [h.to_dict() for h in self.hits]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SettlementSummary:
        return cls(
            settlement_id=d["id"], settled_at_ms=d["at_ms"], region=d["region"],
            institution_id=d["inst"], visit_kind=d["kind"], local_date=d["date"],
            admitted_at_ms=d.get("adm_ms"), discharged_at_ms=d.get("dis_ms"),
            codes=tuple(d.get("codes", ())),
            hits=tuple(Hit.from_dict(h) for h in d.get("hits", ())),
        )


def _key(e: SettlementSummary) -> tuple[int, str]:
    return (e.settled_at_ms, e.settlement_id)


@dataclass(frozen=True, slots=True)
class PatientHistory:
    """Recent settlements of one patient, sorted by (settled_at_ms, settlement_id)."""

    entries: tuple[SettlementSummary, ...] = ()
    newest_ms: int | None = None  # newest event time ever applied (pruning reference)

    def find(self, settlement_id: str) -> SettlementSummary | None:
        for entry in self.entries:
            if entry.settlement_id == settlement_id:
                return entry
        return None

    def add(
        self, summary: SettlementSummary, retention_ms: int, max_entries: int
    ) -> PatientHistory:
        """A new history with ``summary`` inserted, then pruned by retention and size."""
        entries = list(self.entries)
        bisect.insort(entries, summary, key=_key)
        newest = summary.settled_at_ms if self.newest_ms is None else max(
            self.newest_ms, summary.settled_at_ms)
        cutoff = newest - retention_ms
        kept = [e for e in entries if e.settled_at_ms >= cutoff]
        if len(kept) > max_entries:
            kept = kept[len(kept) - max_entries:]
        return PatientHistory(entries=tuple(kept), newest_ms=newest)

    def to_dict(self) -> dict[str, Any]:
        return {"newest_ms": self.newest_ms, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PatientHistory:
        return cls(
            entries=tuple(SettlementSummary.from_dict(e) for e in d.get("entries", ())),
            newest_ms=d.get("newest_ms"),
        )


def local_date(zone: str, settled_at_ms: int) -> str:
    """The calendar day (``YYYY-MM-DD``) of an instant in an IANA time zone."""
    return datetime.fromtimestamp(settled_at_ms // 1000, ZoneInfo(zone)).date().isoformat()


def summarize(
    s: Settlement, day: str, categories: tuple[str, ...], hits: tuple[Hit, ...]
) -> SettlementSummary:
    """The history entry of settlement ``s`` applied on local ``day`` with ``hits``."""
    stay = s.visit.kind == "inpatient"
    return SettlementSummary(
        settlement_id=s.settlement_id, settled_at_ms=s.settled_at_ms, region=s.region,
        institution_id=s.institution.id, visit_kind=s.visit.kind, local_date=day,
        admitted_at_ms=s.visit.admitted_at_ms if stay else None,
        discharged_at_ms=s.visit.discharged_at_ms if stay else None,
        codes=tuple(sorted({i.code for i in s.items if i.category in categories})),
        hits=hits,
    )


__all__ = ["PatientHistory", "SettlementSummary", "local_date", "summarize"]
