"""Quality of the claim rules on generated data (issue: interception, item 6).

Every injected claim case must be hit by its rule; its clean counterpart (readmission
after 20 days, 3 pharmacy sales in 24 h, exactly 3 exams, a 60 h stay, …) must not be.
Per rule, recall and precision ≥ 0.95 over the labelled settlements; the background
(unlabelled settlements) must stay clean too.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from detectors.claims.offline import run_claims
from service.rules_io import load_ruleset_file
from service.validation import parse_settlement


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from service.synth import generate

    out = tmp_path_factory.mktemp("claimsq")
    generate(out, months=3, seed=7, scale="small")
    labels = json.loads((out / "labels.json").read_text())
    settlements = [parse_settlement(x)[0]
                   for x in (out / "settlements.jsonl").read_bytes().splitlines()]
    return labels, run_claims(settlements, load_ruleset_file())


def test_claim_rules_recall_and_precision_per_rule(generated):
    labels, decided = generated
    tp, fp, fn = Counter(), Counter(), Counter()
    for lab in labels["claims"]:
        rule, sid = lab["rule"], lab["settlement_id"]
        hit = any(h.rule == rule for h in decided[sid][1])
        if lab["expected_hit"]:
            tp[rule] += hit
            fn[rule] += not hit
        else:
            fp[rule] += hit
    rules = sorted({lab["rule"] for lab in labels["claims"]})
    lines = [f"{'rule':28} {'tp':>4} {'fp':>4} {'fn':>4} {'recall':>7} {'precision':>9}"]
    bad = []
    for rule in rules:
        recall = tp[rule] / max(tp[rule] + fn[rule], 1)
        precision = tp[rule] / max(tp[rule] + fp[rule], 1)
        lines.append(f"{rule:28} {tp[rule]:4} {fp[rule]:4} {fn[rule]:4} {recall:7.3f} "
                     f"{precision:9.3f}")
        if recall < 0.95 or precision < 0.95 or tp[rule] == 0:
            bad.append(rule)
    print("\n" + "\n".join(lines))
    assert len(rules) == 11, rules
    assert not bad, "\n".join(lines)


def test_background_settlements_are_not_flagged(generated):
    labels, decided = generated
    labelled = {lab["settlement_id"] for lab in labels["claims"]}
    labelled |= {r for lab in labels["claims"] for r in lab.get("related", [])}
    flagged = Counter(h.rule for sid, (_d, hits) in decided.items() if sid not in labelled
                      for h in hits)
    assert sum(flagged.values()) <= 0.001 * len(decided), flagged
