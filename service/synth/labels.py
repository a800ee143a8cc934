"""Assembles ``labels.json`` from the plan, the claim cases and the oracles' readings."""

from __future__ import annotations

from collections import Counter

from .peers import MIN_VISITS, RULES
from .writer import Writer


def _key(ent: dict) -> str:
    return f"{ent['institution_id']}/{ent['id']}" if ent["kind"] == "department" else ent["id"]


def peer_labels(plan, w: Writer) -> tuple[list[dict], list[dict]]:
    cards = w.peers.cards()
    injected = {(c["rule"], c["entity"]["kind"], c["entity"]["id"],
                 c["entity"]["institution_id"], c["visit_kind"])
                for c in plan.peer_cases if not c["decoy"]}
    touched = {(c["entity"]["institution_id"], c["visit_kind"])
               for c in plan.peer_cases if not c["decoy"]}
    for card in cards:
        e = card["entity"]
        ident = (card["rule"], e["kind"], e["id"], e["institution_id"], card["visit_kind"])
        card["source"] = ("injected" if ident in injected else "derived"
                          if (e["institution_id"], card["visit_kind"]) in touched else "natural")
    by_entity: dict[tuple, list[dict]] = {}
    for card in cards:
        e = card["entity"]
        by_entity.setdefault((card["rule"], e["kind"], e["id"], e["institution_id"],
                              card["visit_kind"]), []).append(
            {"period": card["period"], "level": card["level"]})
    cases = []
    for case in plan.peer_cases:
        e, vk = case["entity"], case["visit_kind"]
        metrics = [w.peers.month_metrics(e["kind"], _key(e), vk, k)
                   for k in range(len(w.clock.months))]
        expected = by_entity.get((case["rule"], e["kind"], e["id"], e["institution_id"], vk), [])
        cases.append({**case, "expected": expected, "metrics": metrics,
                      "min_visits": MIN_VISITS[e["kind"]]})
    return cases, cards


def claim_labels(kit, w: Writer) -> list[dict]:
    out = []
    for lab in kit.labels:
        sid = w.ids.get(lab["key"])
        if sid is None:  # scheduled past the end of the data (very short runs only)
            continue
        out.append({"rule": lab["rule"], "settlement_id": sid, "expected_hit": lab["expected_hit"],
                    "why": lab["why"],
                    "related": [w.ids[k] for k in lab["related_keys"] if k in w.ids]})
    return out


def fund_labels(plan, w: Writer, alerts: list[dict]) -> list[dict]:
    out = []
    for case in plan.fund_cases:
        e = case["entity"]
        expected = [{"level": a["level"], "metric": a["metric"], "change": a["change"]}
                    for a in alerts if a["rule"] == case["rule"] and a["entity"]["id"] == e["id"]
                    and a["entity"]["region"] == e["region"] and a["period"] == case["period"]
                    and a.get("visit_kind", case.get("visit_kind")) == case.get("visit_kind")]
        out.append({**case, "expected": expected,
                    "values": w.funds.value(case["rule"], e, case["period"],
                                            case.get("visit_kind"))})
    return out


def assemble(seed: int, scale: str, start: str, plan, kit, w: Writer) -> dict:
    peer_cases, cards = peer_labels(plan, w)
    claims = claim_labels(kit, w)
    alerts = w.funds.alerts()
    counts = {
        "settlements": w.count,
        "by_visit_kind": dict(sorted(w.by_kind.items())),
        "by_region": dict(sorted(w.by_region.items())),
        "claim_hits": dict(sorted(Counter(c["rule"] for c in claims if c["expected_hit"]).items())),
        "claim_decoys": dict(sorted(Counter(c["rule"] for c in claims
                                            if not c["expected_hit"]).items())),
        "peer_cards": dict(sorted(Counter(c["source"] for c in cards).items())),
        "fund_alerts": len(alerts),
    }
    return {"generator": "fund-sentinel synth 1", "seed": seed, "scale": scale, "start": start,
            "months": list(w.clock.months), "rules": list(RULES), "counts": counts,
            "peer": peer_cases, "peer_cards": cards, "claims": claims,
            "fund": fund_labels(plan, w, alerts), "fund_alerts": alerts}
