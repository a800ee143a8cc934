"""One-line renderings used by the CLI and the demo console."""

from service.render import alert_line, decision_line

PEER = {"status": "firing", "level": "red", "rule": "peer.cost_per_visit",
        "entity": {"kind": "doctor", "id": "D1042", "institution_id": "H0007", "region": "610302"},
        "visit_kind": "outpatient", "period": "2025-11", "observed": 512.3, "peer_mean": 401.2,
        "ratio": 1.277, "n": 120, "consecutive_months": 3, "evidence": {"p_value": 0.003}}
CLAIM = {"status": "firing", "level": "yellow", "rule": "claim.split_admission",
         "entity": {"kind": "patient", "id": "p-7f3a91c2", "institution_id": "H1",
                    "region": "610302"},
         "period": "2025-11-18", "evidence": {"message": "readmitted 9 days after discharge"}}


def test_peer_alert_shows_its_evidence():
    line = alert_line(PEER)
    for part in ("RED", "peer.cost_per_visit", "doctor D1042", "512.3", "401.2", "x1.277",
                 "n=120", "3 mo", "p=0.003"):
        assert part in line


def test_patient_ids_are_masked_on_request_only():
    assert "p-7f3a91c2" in alert_line(CLAIM)
    masked = alert_line(CLAIM, mask_patients=True)
    assert "p-7f3a91c2" not in masked and "readmitted" in masked


def test_decision_line_lists_hit_rules():
    d = {"settlement_id": "S1", "decision": "warn",
         "hits": [{"rule": "claim.duplicate_item"}, {"rule": "claim.ghost_bed"}]}
    assert decision_line(d) == "WARN  S1 claim.duplicate_item, claim.ghost_bed"
