"""Exact month totals of one fund-monitor scope (SPEC §7b).

One :class:`MonthTotals` per (scope, month): counts and integer fen sums, plus the DRG
weight sum in integer micro-units (``weight × 10⁶``, exact for the ≤ 6-decimal weights DRG
catalogues publish) so the CMI of a month is an exact fraction. Totals form a commutative
monoid under :meth:`MonthTotals.merge` (``MonthTotals()`` is the identity): the same
settlements give the same totals whatever their order or grouping, which is what lets a
late event be folded in after its month has closed.

State size: seven integers (≈ 90 bytes as JSON). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from detectors.domain import Settlement

WEIGHT_SCALE = 1_000_000  # DRG weights are kept as integer micro-units


def weight_micro(weight: float) -> int:
    """A DRG weight as exact integer micro-units (``1.2345`` → ``1234500``)."""
    return int(round(weight * WEIGHT_SCALE))


@dataclass(frozen=True, slots=True)
class MonthTotals:
    """Sums of one scope's settlements in one month.

    Attributes:
        visits: settlements (cases); the denominator of cost per case.
        total_fen: Σ ``total_amount``.
        fund_fen: Σ ``fund_amount`` (统筹基金支付), watched by ``fund.expenditure_growth``.
        inpatient_visits: inpatient settlements.
        inpatient_total_fen: Σ ``total_amount`` of inpatient settlements.
        drg_visits: inpatient settlements carrying ``visit.drg.weight``.
        drg_weight_micro: Σ of those weights in micro-units (CMI numerator).
    """

    visits: int = 0
    total_fen: int = 0
    fund_fen: int = 0
    inpatient_visits: int = 0
    inpatient_total_fen: int = 0
    drg_visits: int = 0
    drg_weight_micro: int = 0

    @classmethod
    def of(cls, s: Settlement) -> MonthTotals:
        """The contribution of one settlement."""
        inpatient = s.visit.kind == "inpatient"
        weight = s.visit.drg_weight if inpatient else None
        return cls(
            visits=1,
            total_fen=s.total_fen,
            fund_fen=s.fund_fen,
            inpatient_visits=1 if inpatient else 0,
            inpatient_total_fen=s.total_fen if inpatient else 0,
            drg_visits=0 if weight is None else 1,
            drg_weight_micro=0 if weight is None else weight_micro(weight),
        )

    def merge(self, other: MonthTotals) -> MonthTotals:
        """Element-wise sum (commutative, associative; ``MonthTotals()`` is neutral)."""
        return MonthTotals(
            visits=self.visits + other.visits,
            total_fen=self.total_fen + other.total_fen,
            fund_fen=self.fund_fen + other.fund_fen,
            inpatient_visits=self.inpatient_visits + other.inpatient_visits,
            inpatient_total_fen=self.inpatient_total_fen + other.inpatient_total_fen,
            drg_visits=self.drg_visits + other.drg_visits,
            drg_weight_micro=self.drg_weight_micro + other.drg_weight_micro,
        )

    def add(self, s: Settlement) -> MonthTotals:
        """These totals with one more settlement."""
        return self.merge(MonthTotals.of(s))

    @property
    def cost_per_case_fen(self) -> Fraction | None:
        """Σ total_fen / visits, exact; ``None`` without visits."""
        return None if self.visits == 0 else Fraction(self.total_fen, self.visits)

    @property
    def cmi(self) -> Fraction | None:
        """Case-mix index: mean DRG weight of the weighted inpatient visits; ``None`` if none."""
        if self.drg_visits == 0:
            return None
        return Fraction(self.drg_weight_micro, self.drg_visits * WEIGHT_SCALE)

    def to_dict(self) -> dict[str, Any]:
        return {"v": self.visits, "t": self.total_fen, "f": self.fund_fen,
                "iv": self.inpatient_visits, "it": self.inpatient_total_fen,
                "dv": self.drg_visits, "dw": self.drg_weight_micro}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonthTotals:
        return cls(visits=int(d["v"]), total_fen=int(d["t"]), fund_fen=int(d["f"]),
                   inpatient_visits=int(d["iv"]), inpatient_total_fen=int(d["it"]),
                   drg_visits=int(d["dv"]), drg_weight_micro=int(d["dw"]))
