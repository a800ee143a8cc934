"""Ground truth for peer cards (SPEC §4, §5, §11), replayed over the generated stream.

``PeerOracle.update`` is called for every settlement in file order. It keeps, per entity
× visit kind × month, the pooled sums (visits, total fen, drug fen) and, per peer group
× month, the sums of the entities that meet their own minimum volume. At every update of
an entity it evaluates both rules against the pooled mean of the *other* qualifying
peers (at least ``MIN_PEERS``), exactly as §5 reads: yellow when some update of the month
exceeded ``THRESHOLD`` × peer mean; red when an exceeding update comes after two
consecutive months that were "held" (exceeding at their last update). Comparisons are
done in integers (×5 vs ×6), so a ratio of exactly 1.20 never counts.

State is O(entities × months); nothing is rescanned.
"""

from __future__ import annotations

from .lines import Ev

THRESHOLD_NUM, THRESHOLD_DEN = 6, 5  # 1.20
MIN_PEERS = 3
MIN_VISITS = {"hospital": 30, "department": 20, "doctor": 10, "pharmacy": 30}
RULES = ("peer.cost_per_visit", "peer.drug_ratio")


class _Ent:
    __slots__ = ("n", "total", "drug", "qualified", "last", "any", "red", "meta")

    def __init__(self, meta: dict) -> None:
        self.n = self.total = self.drug = 0
        self.qualified = False
        self.last = [False, False]
        self.any = [False, False]
        self.red = [False, False]
        self.meta = meta


def _exceeds(n: int, total: int, drug: int, pn: int, pt: int, pd: int) -> list[bool]:
    cost = pn > 0 and pt > 0 and total * pn * THRESHOLD_DEN > THRESHOLD_NUM * pt * n
    ratio = (total > 0 and pt > 0 and pd > 0
             and drug * pt * THRESHOLD_DEN > THRESHOLD_NUM * pd * total)
    return [cost, ratio]


class PeerOracle:
    def __init__(self, months: tuple[str, ...]) -> None:
        self.months = months
        self.ents: dict[tuple[str, str, str, int], _Ent] = {}
        self.groups: dict[tuple, list[int]] = {}  # (group, month) -> [count, n, total, drug]
        self.group_of: dict[tuple[str, str], tuple] = {}

    @staticmethod
    def entities(ev: Ev) -> list[tuple[str, str, tuple, dict]]:
        inst, rec = ev.inst, ev.rec
        vk = rec["visit"]["kind"]
        base = (inst.region, vk, inst.kind, inst.level)
        if inst.kind == "pharmacy":
            return [("pharmacy", inst.id, ("pharmacy",) + base + (None,),
                     {"kind": "pharmacy", "id": inst.id, "institution_id": inst.id,
                      "region": inst.region})]
        spec = ev.dept.specialty
        return [
            ("hospital", inst.id, ("hospital",) + base + (None,),
             {"kind": "hospital", "id": inst.id, "institution_id": inst.id,
              "region": inst.region}),
            ("department", f"{inst.id}/{ev.dept.id}", ("department",) + base + (spec,),
             {"kind": "department", "id": ev.dept.id, "institution_id": inst.id,
              "region": inst.region}),
            ("doctor", rec["doctor_id"], ("doctor",) + base + (spec,),
             {"kind": "doctor", "id": rec["doctor_id"], "institution_id": inst.id,
              "region": inst.region}),
        ]

    def update(self, ev: Ev) -> None:
        vk = ev.rec["visit"]["kind"]
        k = self.months.index(ev.rec["settled_at"][:7])
        for kind, key, group, meta in self.entities(ev):
            ent = self.ents.get((kind, key, vk, k))
            if ent is None:
                ent = self.ents[(kind, key, vk, k)] = _Ent(meta)
                self.group_of[(kind, key, vk)] = group
            ent.n += 1
            ent.total += ev.total_fen
            ent.drug += ev.drug_fen
            g = self.groups.setdefault((group, k), [0, 0, 0, 0])
            if ent.qualified:
                g[1] += 1
                g[2] += ev.total_fen
                g[3] += ev.drug_fen
            elif ent.n >= MIN_VISITS[kind]:
                ent.qualified = True
                g[0] += 1
                g[1] += ent.n
                g[2] += ent.total
                g[3] += ent.drug
            if not ent.qualified or g[0] - 1 < MIN_PEERS:
                ent.last = [False, False]
                continue
            ex = _exceeds(ent.n, ent.total, ent.drug, g[1] - ent.n, g[2] - ent.total,
                          g[3] - ent.drug)
            ent.last = ex
            for r in (0, 1):
                if not ex[r]:
                    continue
                ent.any[r] = True
                p1 = self.ents.get((kind, key, vk, k - 1))
                p2 = self.ents.get((kind, key, vk, k - 2))
                if p1 is not None and p2 is not None and p1.last[r] and p2.last[r]:
                    ent.red[r] = True

    def month_metrics(self, kind: str, key: str, vk: str, k: int) -> dict:
        """End-of-month reading: the entity's pooled metrics beside its peer pool."""
        ent = self.ents.get((kind, key, vk, k))
        out = {"period": self.months[k], "n": 0, "cost_per_visit": None, "drug_ratio": None,
               "peer_entities": 0, "peer_cost_per_visit": None, "peer_drug_ratio": None}
        if ent is None:
            return out
        out["n"] = ent.n
        out["cost_per_visit"] = round(ent.total / ent.n / 100, 4)
        out["drug_ratio"] = round(ent.drug / ent.total, 4) if ent.total else None
        g = self.groups.get((self.group_of[(kind, key, vk)], k), [0, 0, 0, 0])
        mine = (1, ent.n, ent.total, ent.drug) if ent.qualified else (0, 0, 0, 0)
        peers, pn, pt, pd = (g[i] - mine[i] for i in range(4))
        out["peer_entities"] = peers
        if peers >= MIN_PEERS and pn > 0 and pt > 0:
            out["peer_cost_per_visit"] = round(pt / pn / 100, 4)
            out["peer_drug_ratio"] = round(pd / pt, 4)
        out["qualified"] = ent.qualified
        out["held"] = {RULES[r]: ent.last[r] for r in (0, 1)}
        return out

    def cards(self) -> list[dict]:
        """Every card the §5 reading fires, with the highest level per period."""
        out = []
        for (kind, key, vk, k), ent in sorted(self.ents.items(), key=lambda kv: (
                kv[0][0], kv[0][1], kv[0][2], kv[0][3])):
            for r in (0, 1):
                if ent.any[r]:
                    out.append({"rule": RULES[r], "entity": ent.meta, "visit_kind": vk,
                                "period": self.months[k],
                                "level": "red" if ent.red[r] else "yellow"})
        return out
