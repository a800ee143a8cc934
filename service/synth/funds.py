"""Ground truth for the fund monitors (SPEC §7b), from monthly sums of the stream.

Only closed months are judged: with data ending at the last month's end, every month but
the last closes (an event ≥ month end + 24 h exists in each region). Growth is
``current / previous − 1``; the disease swing compares a month's cost per case with the
mean of the three monthly costs per case before it (all three must exist).
"""

from __future__ import annotations

from collections import defaultdict

from .lines import Ev

EXP_YELLOW, EXP_RED, INST_MIN_FEN = 0.15, 0.30, 5_000_000
SWING_YELLOW, SWING_RED, SWING_MIN_CASES = 0.30, 0.60, 20
INP_YELLOW, INP_RED = 0.20, 0.40


def _level(change: float, yellow: float, red: float) -> str | None:
    return "red" if change > red else ("yellow" if change > yellow else None)


class FundOracle:
    def __init__(self, months: tuple[str, ...]) -> None:
        self.months = months
        self.region_fund: dict[tuple[str, int], int] = defaultdict(int)
        self.inst_fund: dict[tuple[str, int], int] = defaultdict(int)
        self.inst_region: dict[str, str] = {}
        self.inp: dict[tuple[str, int], list] = {}  # visits, total fen, drg weight sum, drg n
        self.dx: dict[tuple[str, str, str, int], list[int]] = {}  # cases, total fen

    def update(self, ev: Ev) -> None:
        rec = ev.rec
        k = self.months.index(rec["settled_at"][:7])
        region, inst = rec["region"], ev.inst.id
        self.region_fund[(region, k)] += ev.fund_fen
        self.inst_fund[(inst, k)] += ev.fund_fen
        self.inst_region[inst] = region
        vk = rec["visit"]["kind"]
        if vk == "inpatient":
            s = self.inp.setdefault((inst, k), [0, 0, 0.0, 0])
            s[0] += 1
            s[1] += ev.total_fen
            if ev.drg_weight is not None:
                s[2] += ev.drg_weight
                s[3] += 1
        if rec["visit"]["diagnoses"]:
            d = self.dx.setdefault((region, rec["visit"]["diagnoses"][0][:3], vk, k), [0, 0])
            d[0] += 1
            d[1] += ev.total_fen

    def closed(self) -> range:
        return range(0, len(self.months) - 1)

    def alerts(self) -> list[dict]:
        out: list[dict] = []
        for k in self.closed():
            if k == 0:
                continue
            period = self.months[k]
            for (region, kk), cur in sorted(self.region_fund.items()):
                prev = self.region_fund.get((region, k - 1), 0)
                if kk == k and prev > 0:
                    self._add(out, "fund.expenditure_growth", {"kind": "region", "id": region,
                              "region": region}, period, "fund_amount", prev, cur,
                              EXP_YELLOW, EXP_RED)
            for (inst, kk), cur in sorted(self.inst_fund.items()):
                prev = self.inst_fund.get((inst, k - 1), 0)
                if kk == k and prev >= INST_MIN_FEN:
                    self._add(out, "fund.expenditure_growth", self._inst(inst), period,
                              "fund_amount", prev, cur, EXP_YELLOW, EXP_RED)
            for (inst, kk), cur in sorted(self.inp.items()):
                prev = self.inp.get((inst, k - 1))
                if kk != k or prev is None:
                    continue
                for metric, p, c in (("visits", prev[0], cur[0]), ("total_cost", prev[1], cur[1]),
                                     ("cmi", prev[2] / prev[3] if prev[3] else 0,
                                      cur[2] / cur[3] if cur[3] else 0)):
                    if p > 0:
                        self._add(out, "fund.inpatient_growth", self._inst(inst), period, metric,
                                  p, c, INP_YELLOW, INP_RED)
            if k >= 3:
                self._swings(out, k)
        return out

    def _swings(self, out: list[dict], k: int) -> None:
        for (region, cat, vk, kk), (n, total) in sorted(self.dx.items()):
            if kk != k or n < SWING_MIN_CASES:
                continue
            base = [self.dx.get((region, cat, vk, j)) for j in (k - 3, k - 2, k - 1)]
            if any(b is None or b[0] == 0 for b in base):
                continue
            mean = sum(b[1] / b[0] for b in base) / 3
            self._add(out, "fund.disease_cost_swing", {"kind": "diagnosis", "id": cat,
                      "region": region}, self.months[k], "cost_per_case", mean, total / n,
                      SWING_YELLOW, SWING_RED, visit_kind=vk, cases=n)

    def _inst(self, inst: str) -> dict:
        return {"kind": "institution", "id": inst, "region": self.inst_region[inst]}

    @staticmethod
    def _add(out: list[dict], rule: str, ent: dict, period: str, metric: str, prev: float,
             cur: float, yellow: float, red: float, **extra) -> None:
        change = cur / prev - 1
        level = _level(change, yellow, red)
        if level is not None:
            out.append({"rule": rule, "entity": ent, "period": period, "metric": metric,
                        "previous": round(prev / 100 if metric != "cmi" and metric != "visits"
                                          else prev, 4),
                        "current": round(cur / 100 if metric != "cmi" and metric != "visits"
                                         else cur, 4),
                        "change": round(change, 4), "level": level, **extra})

    def value(self, rule: str, ent: dict, period: str, visit_kind: str | None = None) -> dict:
        """Previous/current values of one labelled fund case (even when nothing fires)."""
        k = self.months.index(period)
        if rule == "fund.disease_cost_swing":
            cur = self.dx.get((ent["region"], ent["id"], visit_kind, k), [0, 0])
            base = [self.dx.get((ent["region"], ent["id"], visit_kind, j)) for j in range(
                max(0, k - 3), k)]
            costs = [b[1] / b[0] / 100 for b in base if b and b[0]]
            return {"cases": cur[0], "cost_per_case": round(cur[1] / cur[0] / 100, 2)
                    if cur[0] else None, "baseline_costs": [round(c, 2) for c in costs],
                    "closed_in_data": k in self.closed() and k >= 3}
        prev = self.inst_fund.get((ent["id"], k - 1), 0) / 100 if k else None
        cur = self.inst_fund.get((ent["id"], k), 0) / 100
        return {"previous": prev, "current": cur, "closed_in_data": k in self.closed(),
                "change": round(cur / prev - 1, 4) if prev else None}
