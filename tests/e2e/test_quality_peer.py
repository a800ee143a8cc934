"""Quality of the peer cards on generated data (issue: peer-comparison cards, item 7).

Ground truth is the generator's labels.json: injected anomalies with their expected cards
(yellow per inflated month, red in the third consecutive one) and decoys that must not
fire. A card *stands* for a month when it fired and was not resolved by the month's last
close: transient mid-month crossings that resolve (SPEC §5 hysteresis) are reported in
the table but are not cards a supervisor is left with.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from detectors.offline import run_cards
from service.rules_io import load_ruleset_file
from service.validation import parse_settlement


def _ident(rule: str, ent: dict, visit_kind: str) -> tuple:
    return (rule, ent["kind"], ent["id"], ent["institution_id"], visit_kind)


def standing_and_transient(alerts: list[dict]) -> tuple[dict, dict]:
    status: dict[tuple, str] = {}
    for a in alerts:
        key = _ident(a["rule"], a["entity"], a["visit_kind"]) + (a["period"], a["level"])
        status[key] = "resolved" if status.get(key) == "resolved" else a["status"]
    standing, transient = defaultdict(set), defaultdict(set)
    for key, st in status.items():
        (standing if st == "firing" else transient)[key[:5]].add(key[5:])
    return standing, transient


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[dict, list[dict]]:
    from service.synth import generate

    out = tmp_path_factory.mktemp("quality")
    generate(out, months=3, seed=5, scale="small")
    labels = json.loads((out / "labels.json").read_text())
    settlements = [parse_settlement(line)[0]
                   for line in (out / "settlements.jsonl").read_bytes().splitlines()]
    alerts, _rows = run_cards(settlements, load_ruleset_file())
    return labels, alerts


def test_peer_cards_recall_and_precision(generated):
    labels, alerts = generated
    standing, transient = standing_and_transient(alerts)
    tp = fp = fn = 0
    lines = [f"{'case':58} {'expected':30} {'standing':30} transient"]
    for case in labels["peer"]:
        ident = _ident(case["rule"], case["entity"], case["visit_kind"])
        expected = set() if case["decoy"] else {(e["period"], e["level"])
                                                for e in case["expected"]}
        got = standing.get(ident, set())
        tp, fp, fn = tp + len(expected & got), fp + len(got - expected), fn + len(expected - got)
        fmt = lambda s: ",".join(f"{p}:{lv[0]}" for p, lv in sorted(s)) or "-"  # noqa: E731
        lines.append(f"{case['why'][:58]:58} {fmt(expected):30} {fmt(got):30} "
                     f"{fmt(transient.get(ident, set()))}")
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    lines.append(f"cards: tp={tp} fp={fp} fn={fn} recall={recall:.3f} precision={precision:.3f}")
    print("\n" + "\n".join(lines))
    assert tp + fn >= 10, "the generator should inject at least 10 expected peer cards"
    assert recall >= 0.95, "\n".join(lines)
    assert precision >= 0.95, "\n".join(lines)
