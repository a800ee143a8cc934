"""The synthetic feed (``service.synth``): valid §3 events, labels that are ground truth.

Brute-force oracles written here, independently of the generator, re-derive every claim
hit (SPEC §7/§11), the end-of-month peer metrics (§4) and the fund sums (§7b) from the
written file and compare them with ``labels.json``. The background must be clean: the
oracle's hits must be exactly the labelled ones.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from service.synth import generate
from service.synth.catalogue import CHRONIC_DIAGNOSES, ITEMS, restricted_items

ROOT = Path(__file__).resolve().parents[2]
H_MS, DAY_MS = 3_600_000, 86_400_000
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CLAIM_RULES = ("claim.trace_code_reuse", "claim.gender_restricted", "claim.age_restricted",
               "claim.duplicate_item", "claim.over_quantity", "claim.split_admission",
               "claim.overlapping_stay", "claim.impossible_travel", "claim.pharmacy_frequency",
               "claim.excessive_exams", "claim.ghost_bed")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, months=4, seed=7, scale="small")
    recs = [orjson.loads(line) for line in (out / "settlements.jsonl").read_bytes().splitlines()]
    labels = orjson.loads((out / "labels.json").read_bytes())
    return out, summary, recs, labels


def ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


# ---- §3 shape -------------------------------------------------------------------------------

def _money(x) -> bool:
    return isinstance(x, (int, float)) and x >= 0 and abs(x * 100 - round(x * 100)) < 1e-6


def settlement_errors(r: dict) -> list[str]:
    """A small, strict reading of SPEC §3 (what the generator promises)."""
    err = []
    if not isinstance(r.get("settlement_id"), str) or not 1 <= len(r["settlement_id"]) <= 64:
        err.append("settlement_id")
    for key in ("settled_at",) + (("admitted_at", "discharged_at")
                                  if r.get("visit", {}).get("kind") == "inpatient" else ()):
        ts = r.get(key) if key == "settled_at" else r.get("visit", {}).get(key)
        if not isinstance(ts, str) or not RFC3339.match(ts) or not ts.endswith("+08:00"):
            err.append(key)
    inst, dept, visit = r.get("institution", {}), r.get("department"), r.get("visit", {})
    if inst.get("kind") not in ("hospital", "primary", "pharmacy") or inst.get("level") not in (
            0, 1, 2, 3) or inst.get("ownership") not in ("public", "private"):
        err.append("institution")
    pharmacy = inst.get("kind") == "pharmacy"
    if pharmacy != (dept is None) or pharmacy != (r.get("doctor_id") is None):
        err.append("department/doctor")
    if dept is not None and dept.get("specialty") not in ("internal", "surgery", "pediatrics",
                                                          "obstetrics", "tcm", "rehab", "icu",
                                                          "other"):
        err.append("specialty")
    p = r.get("patient", {})
    if p.get("gender") not in ("M", "F") or not 0 <= p.get("age", -1) <= 130:
        err.append("patient")
    if visit.get("kind") not in ("outpatient", "inpatient", "pharmacy") or (
            visit.get("kind") != "pharmacy" and not visit.get("diagnoses")):
        err.append("visit")
    if pharmacy != (visit.get("kind") == "pharmacy"):
        err.append("visit kind vs institution")
    if visit.get("kind") == "inpatient" and "settled_at" not in err and (
            r["settled_at"] != visit.get("discharged_at")
            or ms(visit["admitted_at"]) >= ms(visit["discharged_at"])):
        err.append("stay times")
    items = r.get("items") or []
    if not items:
        err.append("items")
    for it in items:
        ok = (it.get("category") in ("drug", "consumable", "exam", "treatment", "bed", "service")
              and it.get("quantity", 0) > 0 and _money(it.get("unit_price"))
              and _money(it.get("amount"))
              and abs(it["quantity"] * it["unit_price"] - it["amount"]) < 0.005)
        if it.get("category") == "drug":
            codes = it.get("trace_codes", [])
            ok = ok and len(codes) == it["quantity"] and all(
                len(c) == 20 and c.isdigit() for c in codes) and it.get("days_supply", 0) > 0
        if not ok:
            err.append(f"item {it.get('code')}")
    total, fund = r.get("total_amount"), r.get("fund_amount")
    if not _money(total) or abs(total - sum(it.get("amount", 0) for it in items)) > 0.01:
        err.append("total_amount")
    if not _money(fund) or not (total is None or fund <= total):
        err.append("fund_amount")
    return err


EXAMPLE = {"settlement_id": "610302-20251118-000812", "settled_at": "2025-11-18T10:02:11+08:00",
           "region": "610302",
           "institution": {"id": "H0007", "kind": "hospital", "level": 2, "ownership": "private"},
           "department": {"id": "SURG1", "specialty": "surgery"}, "doctor_id": "D1042",
           "patient": {"id": "p-7f3a91c2", "gender": "F", "age": 61},
           "visit": {"kind": "outpatient", "diagnoses": ["K40.9", "I10"]},
           "items": [{"code": "110200003", "category": "service", "quantity": 1,
                      "unit_price": 25.0, "amount": 25.0},
                     {"code": "XJ01DCC092A001", "category": "drug", "quantity": 2,
                      "unit_price": 29.5, "amount": 59.0, "days_supply": 6,
                      "trace_codes": ["83912005163732421977", "83912005163732421978"]}],
           "total_amount": 84.0, "fund_amount": 50.4}


@pytest.mark.parametrize("path, value, error", [
    (None, None, None),
    (("total_amount",), 84.5, "total_amount"),
    (("fund_amount",), 90.0, "fund_amount"),
    (("fund_amount",), 50.401, "fund_amount"),
    (("settled_at",), "2025-11-18T10:02:11Z", "settled_at"),
    (("department",), None, "department/doctor"),
    (("visit", "kind"), "inpatient", "admitted_at"),
    (("items", 1, "trace_codes"), ["83912005163732421977"], "item XJ01DCC092A001"),
    (("patient", "gender"), "X", "patient"),
])
def test_settlement_checker_catches_each_break(path, value, error):
    rec = orjson.loads(orjson.dumps(EXAMPLE))
    if path is not None:
        target = rec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    errs = settlement_errors(rec)
    assert (errs == []) if error is None else (error in errs), errs


def test_every_line_is_a_valid_settlement_in_time_order(small):
    _, summary, recs, labels = small
    assert 15_000 <= len(recs) <= 35_000 and summary["settlements"] == len(recs)
    bad = [(r["settlement_id"], e) for r in recs if (e := settlement_errors(r))]
    assert bad == []
    times = [ms(r["settled_at"]) for r in recs]
    assert times == sorted(times)
    assert len({r["settlement_id"] for r in recs}) == len(recs)
    assert summary["seconds"] < 20  # the issue asks for well under 10 s; CI slack


def test_population_is_realistic(small):
    _, _, recs, _ = small
    insts = {(r["region"], r["institution"]["kind"], r["institution"]["level"]) for r in recs}
    assert len({r["region"] for r in recs}) >= 3
    for kind, level in (("hospital", 1), ("hospital", 2), ("hospital", 3), ("primary", 0),
                        ("primary", 1), ("pharmacy", 0)):
        assert any(k == kind and lv == level for _, k, lv in insts), (kind, level)
    out = [r for r in recs if r["visit"]["kind"] == "outpatient"]
    ped = [r["patient"]["age"] for r in out if r["department"]["specialty"] == "pediatrics"]
    assert sum(a <= 14 for a in ped) / len(ped) > 0.9
    assert all(r["patient"]["gender"] == "F" for r in recs
               if r["department"] and r["department"]["specialty"] == "obstetrics")
    week = Counter(datetime.fromisoformat(r["settled_at"]).weekday() for r in out)
    assert min(week[d] for d in range(5)) > 1.5 * max(week[5], week[6])
    hours = Counter(int(r["settled_at"][11:13]) for r in out)
    assert sum(hours[h] for h in range(8, 18)) > 0.85 * len(out)
    cost = defaultdict(list)
    for r in out:
        cost[r["institution"]["level"]].append(r["total_amount"])
    means = [sum(cost[lv]) / len(cost[lv]) for lv in (1, 2, 3)]
    assert means == sorted(means)
    totals = sorted(r["total_amount"] for r in out)
    assert sum(totals) / len(totals) > totals[len(totals) // 2]  # right-skewed (lognormal)
    drug = defaultdict(lambda: [0.0, 0.0])
    for r in out:
        d = drug[r["department"]["specialty"]]
        d[0] += sum(i["amount"] for i in r["items"] if i["category"] == "drug")
        d[1] += r["total_amount"]
    ratio = {k: v[0] / v[1] for k, v in drug.items()}
    assert ratio["tcm"] > ratio["internal"] > ratio["surgery"] > ratio["rehab"]
    stays = [r for r in recs if r["visit"]["kind"] == "inpatient"]
    assert sum("drg" in r["visit"] for r in stays) > 0.7 * len(stays)
    assert all(any(i["category"] == "bed" for i in r["items"]) for r in stays)


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path, capfd):
    out, *_ = small
    generate(tmp_path / "a", months=4, seed=7, scale="small")
    for name in ("settlements.jsonl", "labels.json"):
        assert (tmp_path / "a" / name).read_bytes() == (out / name).read_bytes()
    generate(tmp_path / "b", months=1, seed=7, scale="small")
    generate(tmp_path / "c", months=1, seed=8, scale="small")
    assert (tmp_path / "b" / "settlements.jsonl").read_bytes() != (
        tmp_path / "c" / "settlements.jsonl").read_bytes()
    captured = capfd.readouterr()
    assert "p-" not in captured.out + captured.err


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale="huge")


def test_catalogue_agrees_with_the_shipped_rule_set():
    doc = tomllib.loads((ROOT / "service" / "data" / "catalogue.toml").read_text())
    shipped = doc["items"]
    for code, item in restricted_items().items():
        entry = shipped.get(code)
        assert entry is not None, code
        assert (entry.get("gender"), entry.get("min_age"), entry.get("max_age")) == (
            item.gender, item.min_age, item.max_age), code
    assert set(CHRONIC_DIAGNOSES) <= set(doc["chronic"]["prefixes"])


# ---- claim oracles (SPEC §7, §11) -----------------------------------------------------------

def _stay(r):
    v = r["visit"]
    return (ms(v["admitted_at"]), ms(v["discharged_at"])) if v["kind"] == "inpatient" else None


def claim_oracle(recs: list[dict], chronic: tuple[str, ...]) -> dict[str, set[str]]:
    hits: dict[str, set[str]] = defaultdict(set)
    sold: set[str] = set()
    history: dict[str, list[dict]] = defaultdict(list)
    watched = ("exam", "treatment", "service")
    for r in recs:
        sid, items, v, p = r["settlement_id"], r["items"], r["visit"], r["patient"]
        t, stay, inst = ms(r["settled_at"]), _stay(r), r["institution"]["id"]
        codes = [c for it in items for c in it.get("trace_codes", ())]
        if sold.intersection(codes):
            hits["claim.trace_code_reuse"].add(sid)
        sold.update(codes)
        for it in items:
            cat = ITEMS.get(it["code"])
            if cat and cat.gender and cat.gender != p["gender"]:
                hits["claim.gender_restricted"].add(sid)
            if cat and ((cat.min_age is not None and p["age"] < cat.min_age)
                        or (cat.max_age is not None and p["age"] > cat.max_age)):
                hits["claim.age_restricted"].add(sid)
        mine = [it["code"] for it in items if it["category"] in watched]
        day = r["settled_at"][:10]
        earlier = history[p["id"]]
        if len(mine) != len(set(mine)) or any(
                e["inst"] == inst and e["day"] == day and e["watched"] & set(mine)
                for e in earlier):
            hits["claim.duplicate_item"].add(sid)
        if v["kind"] != "inpatient":
            limit = 30 if any(d.upper().startswith(chronic) for d in v["diagnoses"]) else 7
            if any(it["category"] == "drug" and it.get("days_supply", 0) > limit for it in items):
                hits["claim.over_quantity"].add(sid)
        for e in earlier:
            if stay and e["stay"] and e["inst"] == inst and any(
                    0 <= gap <= 15 * DAY_MS for gap in (stay[0] - e["stay"][1],
                                                        e["stay"][0] - stay[1])):
                hits["claim.split_admission"].add(sid)
            if e["inst"] != inst and (
                    (stay and e["stay"] and e["stay"][0] < stay[1] and stay[0] < e["stay"][1])
                    or (stay and not e["stay"] and stay[0] <= e["t"] <= stay[1])
                    or (not stay and e["stay"] and e["stay"][0] <= t <= e["stay"][1])):
                hits["claim.overlapping_stay"].add(sid)
            if e["region"] != r["region"] and abs(e["t"] - t) < 2 * H_MS:
                hits["claim.impossible_travel"].add(sid)
        if v["kind"] == "pharmacy":
            sales = sorted([e["t"] for e in earlier if e["pharmacy"]] + [t])
            i = sales.index(t)
            if any(sales[j + 3] - sales[j] < DAY_MS
                   for j in range(max(0, i - 3), min(i, len(sales) - 4) + 1)):
                hits["claim.pharmacy_frequency"].add(sid)
        if stay:
            per_exam = Counter()
            for it in items:
                if it["category"] == "exam":
                    per_exam[it["code"]] += it["quantity"]
            if per_exam and max(per_exam.values()) > 3:
                hits["claim.excessive_exams"].add(sid)
            bed = sum(it["amount"] for it in items if it["category"] in ("bed", "service"))
            if stay[1] - stay[0] >= 72 * H_MS and bed > 0.8 * r["total_amount"]:
                hits["claim.ghost_bed"].add(sid)
        earlier.append({"inst": inst, "day": day, "watched": set(mine), "stay": stay, "t": t,
                        "region": r["region"], "pharmacy": v["kind"] == "pharmacy"})
    return hits


@pytest.fixture(scope="module")
def oracle(small):
    return claim_oracle(small[2], CHRONIC_DIAGNOSES)


@pytest.mark.parametrize("rule", CLAIM_RULES)
def test_claim_oracle_agrees_with_labels(small, oracle, rule):
    _, _, recs, labels = small
    ids = {r["settlement_id"] for r in recs}
    mine = [c for c in labels["claims"] if c["rule"] == rule]
    expected = {c["settlement_id"] for c in mine if c["expected_hit"]}
    decoys = {c["settlement_id"] for c in mine if not c["expected_hit"]}
    assert len(expected) >= 5 and decoys
    assert expected | decoys | {x for c in mine for x in c["related"]} <= ids
    assert not decoys & oracle[rule], "a decoy fires"
    assert expected - oracle[rule] == set(), "a labelled case does not fire"
    assert oracle[rule] - expected == set(), "an unlabelled settlement fires (dirty background)"


def test_claim_oracle_with_the_shipped_chronic_list(small):
    doc = tomllib.loads((ROOT / "service" / "data" / "catalogue.toml").read_text())
    shipped = claim_oracle(small[2], tuple(doc["chronic"]["prefixes"]))
    labelled = {c["settlement_id"] for c in small[3]["claims"]
                if c["rule"] == "claim.over_quantity" and c["expected_hit"]}
    assert shipped["claim.over_quantity"] == labelled


# ---- peer metrics (SPEC §4, §5) -------------------------------------------------------------

MIN_VISITS = {"hospital": 30, "department": 20, "doctor": 10, "pharmacy": 30}


def month_sums(recs):
    sums: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0])
    group_of = {}
    for r in recs:
        inst, vk, month = r["institution"], r["visit"]["kind"], r["settled_at"][:7]
        base = (r["region"], vk, inst["kind"], inst["level"])
        if inst["kind"] == "pharmacy":
            ents = [("pharmacy", inst["id"], base)]
        else:
            spec = r["department"]["specialty"]
            ents = [("hospital", inst["id"], base),
                    ("department", f"{inst['id']}/{r['department']['id']}", base + (spec,)),
                    ("doctor", r["doctor_id"], base + (spec,))]
        drug = sum(i["amount"] for i in r["items"] if i["category"] == "drug")
        for kind, key, group in ents:
            s = sums[(kind, key, vk, month)]
            s[0] += 1
            s[1] += r["total_amount"]
            s[2] += drug
            group_of[(kind, key, vk)] = (kind,) + group
    return sums, group_of


def test_peer_labels_match_recomputed_month_metrics(small):
    check_peer_metrics(*small[2:])


def check_peer_metrics(recs: list[dict], labels: dict) -> None:
    """Each labelled case's end-of-month metrics, recomputed from the file; injected months
    run > 1.3 x the peer mean and carry a card, decoys stay under 1.2 or under volume."""
    sums, group_of = month_sums(recs)
    members = defaultdict(list)
    for (kind, key, vk, month), s in sums.items():
        if s[0] >= MIN_VISITS[kind]:
            members[(group_of[(kind, key, vk)], month)].append((key, s))
    assert labels["peer"]
    for case in labels["peer"]:
        e, vk = case["entity"], case["visit_kind"]
        key = f"{e['institution_id']}/{e['id']}" if e["kind"] == "department" else e["id"]
        for m in case["metrics"]:
            n, total, drug = sums.get((e["kind"], key, vk, m["period"]), [0, 0.0, 0.0])
            assert m["n"] == n
            if not n:
                continue
            assert m["cost_per_visit"] == pytest.approx(total / n, abs=1e-3)
            peers = [s for k, s in members[(group_of[(e["kind"], key, vk)], m["period"])]
                     if k != key]
            assert m["peer_entities"] == len(peers)
            ratio = None
            if len(peers) >= 3:
                mean = sum(s[1] for s in peers) / sum(s[0] for s in peers)
                assert m["peer_cost_per_visit"] == pytest.approx(mean, abs=1e-3)
                assert m["peer_drug_ratio"] == pytest.approx(
                    sum(s[2] for s in peers) / sum(s[1] for s in peers), abs=1e-4)
                metric = "cost_per_visit" if case["rule"].endswith("cost_per_visit") else "drug"
                ratio = (total / n / mean if metric == "cost_per_visit"
                         else (drug / total) / m["peer_drug_ratio"])
            levels = {x["period"]: x["level"] for x in case["expected"]}
            if case["decoy"]:
                assert ratio is None or n < MIN_VISITS[e["kind"]] or ratio < 1.2, (case, m)
            elif m["period"] in case["inflated_months"]:
                assert ratio is not None and ratio > 1.3 and m["period"] in levels, (case, m)
            else:
                assert m["period"] not in levels, (case, m)


def test_peer_expectations_follow_the_plan(small):
    _, _, _, labels = small
    months = labels["months"]
    kinds = set()
    for case in labels["peer"]:
        levels = [x["level"] for x in case["expected"]]
        if case["decoy"]:
            assert levels == [], case["entity"]
            continue
        kinds.add((case["entity"]["kind"], case["rule"], len(case["inflated_months"])))
        assert [x["period"] for x in case["expected"]] == case["inflated_months"]
        assert levels[-1] == ("red" if len(case["inflated_months"]) >= 3 else "yellow")
        assert set(levels[:-1]) <= {"yellow"}
    assert len(months) == 4
    for want in (("doctor", "peer.cost_per_visit", 3), ("doctor", "peer.drug_ratio", 3),
                 ("doctor", "peer.cost_per_visit", 1), ("doctor", "peer.drug_ratio", 1),
                 ("department", "peer.cost_per_visit", 3), ("hospital", "peer.cost_per_visit", 3),
                 ("pharmacy", "peer.cost_per_visit", 3)):
        assert want in kinds
    cards = Counter(c["source"] for c in labels["peer_cards"])
    assert cards["injected"] >= 8 and cards["natural"] <= 8, cards


# ---- fund monitors (SPEC §7b) ---------------------------------------------------------------

def test_fund_labels_match_recomputed_sums(small):
    _, _, recs, labels = small
    fund = defaultdict(float)
    for r in recs:
        fund[(r["institution"]["id"], r["settled_at"][:7])] += r["fund_amount"]
    months = labels["months"]
    growth = [c for c in labels["fund"] if c["rule"] == "fund.expenditure_growth"]
    assert any(not c["decoy"] for c in growth) and any(c["decoy"] for c in growth)
    for case in growth:
        k = months.index(case["period"])
        prev, cur = fund[(case["entity"]["id"], months[k - 1])], fund[(case["entity"]["id"],
                                                                         case["period"])]
        assert case["values"]["previous"] == pytest.approx(prev, abs=0.05)
        assert case["values"]["current"] == pytest.approx(cur, abs=0.05)
        fires = prev >= 50_000 and cur / prev - 1 > 0.15
        assert bool(case["expected"]) == fires and fires != case["decoy"], case


def test_disease_swing_fires_once_its_month_closes(tmp_path):
    """With five months the swing month (the 4th) has three months before it and closes."""
    generate(tmp_path, months=5, seed=7, scale="small")
    labels = orjson.loads((tmp_path / "labels.json").read_bytes())
    recs = [orjson.loads(x) for x in (tmp_path / "settlements.jsonl").read_bytes().splitlines()]
    swings = [c for c in labels["fund"] if c["rule"] == "fund.disease_cost_swing"]
    assert {c["decoy"] for c in swings} == {True, False}
    for case in swings:
        cases = defaultdict(list)
        for r in recs:
            dx = r["visit"]["diagnoses"]
            if (r["region"] == case["entity"]["region"] and dx and dx[0][:3] == case["entity"]["id"]
                    and r["visit"]["kind"] == case["visit_kind"]):
                cases[r["settled_at"][:7]].append(r["total_amount"])
        k = labels["months"].index(case["period"])
        base = [sum(cases[m]) / len(cases[m]) for m in labels["months"][k - 3:k]]
        cur = cases[case["period"]]
        assert case["values"]["closed_in_data"] and case["values"]["cases"] == len(cur)
        fires = len(cur) >= 20 and sum(cur) / len(cur) / (sum(base) / 3) - 1 > 0.30
        assert fires != case["decoy"] and bool(case["expected"]) == fires, case


# ---- the tiny scale (broker-backed integration tests) ----------------------------------------

def _load(out: Path) -> tuple[list[dict], dict]:
    recs = [orjson.loads(line) for line in (out / "settlements.jsonl").read_bytes().splitlines()]
    return recs, orjson.loads((out / "labels.json").read_bytes())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    summary = generate(out, months=3, seed=3, scale="tiny")
    return (out, summary, *_load(out))


def test_tiny_is_small_valid_and_one_region(tiny):
    _, summary, recs, labels = tiny
    assert 2_500 <= len(recs) <= 4_000 and summary["settlements"] == len(recs)
    assert summary["seconds"] < 3  # under 1 s on the dev machine; CI slack
    assert [(r["settlement_id"], e) for r in recs if (e := settlement_errors(r))] == []
    times = [ms(r["settled_at"]) for r in recs]
    assert times == sorted(times)
    assert len({r["settlement_id"] for r in recs}) == len(recs)
    # one region; a second one appears only where a claim rule needs it (impossible travel,
    # cross-region trace-code reuse), and only in the last, unclosed month
    home = Counter(r["region"] for r in recs).most_common(1)[0][0]
    away = [r for r in recs if r["region"] != home]
    labelled = {c["settlement_id"] for c in labels["claims"]}
    assert len(away) <= 10 and {r["settlement_id"] for r in away} <= labelled
    assert {r["settled_at"][:7] for r in away} <= {labels["months"][-1]}
    assert {r["institution"]["kind"] for r in recs} == {"hospital", "primary", "pharmacy"}
    assert {r["visit"]["kind"] for r in recs} == {"outpatient", "inpatient", "pharmacy"}


def test_tiny_claim_cases_are_ground_truth(tiny):
    _, _, recs, labels = tiny
    found = claim_oracle(recs, CHRONIC_DIAGNOSES)
    for rule in CLAIM_RULES:
        mine = [c for c in labels["claims"] if c["rule"] == rule]
        expected = {c["settlement_id"] for c in mine if c["expected_hit"]}
        decoys = {c["settlement_id"] for c in mine if not c["expected_hit"]}
        assert len(expected) >= 2 and decoys, rule
        assert found[rule] == expected, rule  # every case fires, nothing else does
    assert set(found) <= set(CLAIM_RULES)


def test_tiny_peer_cases_are_ground_truth(tiny):
    _, _, recs, labels = tiny
    check_peer_metrics(recs, labels)
    injected = [c for c in labels["peer"] if not c["decoy"]]
    for case in labels["peer"]:
        levels = [x["level"] for x in case["expected"]]
        if case["decoy"]:
            assert levels == [], case["why"]
        else:
            assert [x["period"] for x in case["expected"]] == case["inflated_months"]
            assert levels[-1] == ("red" if len(levels) >= 3 else "yellow"), case["why"]
    shapes = {(c["entity"]["kind"], c["rule"], tuple(x["level"] for x in c["expected"]))
              for c in injected}
    assert ("doctor", "peer.cost_per_visit", ("yellow", "yellow", "red")) in shapes
    assert ("doctor", "peer.drug_ratio", ("yellow",)) in shapes
    assert {k for k, _, _ in shapes} >= {"doctor", "hospital", "pharmacy"}
    doctors = [c for c in labels["peer"] if c["decoy"] and c["entity"]["kind"] == "doctor"]
    ratios = [[m["cost_per_visit"] / m["peer_cost_per_visit"] for m in c["metrics"]]
              for c in doctors]
    assert any(all(m["n"] >= 10 for m in c["metrics"]) and all(0.9 < x < 1.2 for x in r)
               for c, r in zip(doctors, ratios)), "the x1.08 near miss, judged every month"
    assert any(all(0 < m["n"] < 10 for m in c["metrics"]) and all(x > 1.5 for x in r)
               for c, r in zip(doctors, ratios)), "the x2 doctor under the minimum volume"
    cards = Counter(c["source"] for c in labels["peer_cards"])
    assert cards["injected"] >= 8 and cards["natural"] <= 1, cards


def test_tiny_is_deterministic(tiny, tmp_path):
    out, *_ = tiny
    generate(tmp_path / "a", months=3, seed=3, scale="tiny")
    for name in ("settlements.jsonl", "labels.json"):
        assert (tmp_path / "a" / name).read_bytes() == (out / name).read_bytes()
    generate(tmp_path / "b", months=3, seed=4, scale="tiny")
    assert (tmp_path / "b" / "settlements.jsonl").read_bytes() != (
        out / "settlements.jsonl").read_bytes()
