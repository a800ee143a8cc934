"""detectors.alert_identity: stable alert ids and the SPEC §6 envelope."""

from __future__ import annotations

import hashlib
import json

import pytest

from detectors.alert_identity import alert_id, card_alert, entity_identity
from detectors.cards import CardChange, Evidence
from detectors.entities import EntityRef

SPEC_KEYS = ["alert_id", "status", "level", "rule", "rules_version", "entity", "visit_kind",
             "period", "observed", "peer_mean", "ratio", "threshold", "n", "peer_entities",
             "consecutive_months", "evidence", "event_time"]  # SPEC §6 minus emitted_at

DOCTOR = EntityRef("doctor", "D1042", "H007", "610302")
EV = Evidence("2025-11-18T10:02:11+08:00", 1763431331000, 512.29871, 401.2012, 1.276893, 120,
              14, 1, 0.0031234, ("610302-20251118-000812",))


def change(rule="peer.cost_per_visit", level="yellow", status="firing", ev=EV):
    return CardChange(rule=rule, level=level, status=status, reason="threshold",
                      threshold=1.2, evidence=ev)


def test_alert_id_is_a_truncated_sha256_of_the_joined_identity():
    got = alert_id("peer.cost_per_visit", "hospital", "H0007", "outpatient", "2025-11", "yellow")
    text = "peer.cost_per_visit|hospital|H0007|outpatient|2025-11|yellow"
    assert got == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert got == alert_id("peer.cost_per_visit", "hospital", "H0007", "outpatient", "2025-11",
                           "yellow")


@pytest.mark.parametrize(
    ("field", "value"),
    [(0, "peer.drug_ratio"), (1, "doctor"), (2, "H0008"), (3, "inpatient"), (4, "2025-12"),
     (5, "red")],
)
def test_every_identity_field_changes_the_id(field, value):
    base = ["peer.cost_per_visit", "hospital", "H0007", "outpatient", "2025-11", "yellow"]
    other = list(base)
    other[field] = value
    assert alert_id(*base) != alert_id(*other)


def test_separator_inside_a_field_does_not_collide():
    assert alert_id("r", "k", "a|b", "v", "p", "l") != alert_id("r", "k|a", "b", "v", "p", "l")


def test_same_department_id_at_two_hospitals_gets_two_alert_ids():
    a = EntityRef("department", "SURG1", "H0007", "610302")
    b = EntityRef("department", "SURG1", "H0012", "610302")
    assert entity_identity(a) != entity_identity(b)
    alerts = [card_alert(change(), "3", e, "outpatient", "2025-11") for e in (a, b)]
    assert alerts[0]["alert_id"] != alerts[1]["alert_id"]
    assert alerts[0]["entity"] == {"kind": "department", "id": "SURG1",
                                   "institution_id": "H0007", "region": "610302"}


def test_firing_and_resolved_share_the_alert_id():
    fire = card_alert(change(status="firing"), "3", DOCTOR, "outpatient", "2025-11")
    res = card_alert(change(status="resolved"), "3", DOCTOR, "outpatient", "2025-11")
    assert fire["alert_id"] == res["alert_id"] and res["status"] == "resolved"


def test_card_alert_envelope_matches_spec():
    a = card_alert(change(), 3, DOCTOR, "outpatient", "2025-11")
    assert list(a) == SPEC_KEYS
    assert a == {
        "alert_id": alert_id("peer.cost_per_visit", "doctor", "H007|D1042", "outpatient",
                             "2025-11", "yellow"),
        "status": "firing", "level": "yellow", "rule": "peer.cost_per_visit",
        "rules_version": "3",
        "entity": {"kind": "doctor", "id": "D1042", "institution_id": "H007",
                   "region": "610302"},
        "visit_kind": "outpatient", "period": "2025-11",
        "observed": 512.30, "peer_mean": 401.20, "ratio": 1.277, "threshold": 1.2,
        "n": 120, "peer_entities": 14, "consecutive_months": 1,
        "evidence": {"settlement_ids": ["610302-20251118-000812"], "p_value": 0.00312},
        "event_time": "2025-11-18T10:02:11+08:00",
    }
    assert json.loads(json.dumps(a)) == a  # plain JSON types


def test_drug_ratio_keeps_four_decimals_and_none_p_value():
    ev = Evidence("t", 0, 0.45219, 0.37, 1.2221, 30, 3, 1, None, ())
    a = card_alert(change(rule="peer.drug_ratio", ev=ev), "1", DOCTOR, "outpatient", "2025-11")
    assert (a["observed"], a["peer_mean"], a["ratio"]) == (0.4522, 0.37, 1.222)
    assert a["evidence"] == {"settlement_ids": [], "p_value": None}
