"""detectors.ruleset: loading and validating the rule set (SPEC §8)."""

import json
from pathlib import Path

import pytest

from detectors.ruleset import RuleSet, RuleSetError, default_ruleset, load_ruleset
from detectors.ruleset_sections import ALL_RULES, CLAIM_RULES, FUND_RULES
from service.rules_io import DATA_DIR, load_ruleset_file, load_ruleset_text

MINIMAL = 'version = "7"\n[catalogue]\n'
SHIPPED = DATA_DIR / "rules.toml"


def load(text: str) -> RuleSet:
    return load_ruleset(text)


def errors_of(text: str, **kw) -> list[str]:
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(text, **kw)
    return exc.value.errors


def test_minimal_document_takes_spec_defaults():
    rs = load(MINIMAL)
    assert rs == default_ruleset(version="7")
    assert rs.version == "7" and rs.timezone == "Asia/Shanghai"
    assert rs.claims.split_admission.window_hours == 360
    assert rs.claims.split_admission.window_ms == 360 * 3_600_000
    assert rs.claims.over_quantity.outpatient_days == 7
    assert rs.claims.over_quantity.chronic_days == 30
    assert rs.claims.impossible_travel.window_minutes == 120
    pf = rs.claims.pharmacy_frequency
    assert (pf.count, pf.window_hours) == (4, 24)
    assert rs.claims.excessive_exams.max_quantity == 3
    assert rs.claims.ghost_bed.min_stay_hours == 72
    assert rs.claims.ghost_bed.max_bed_service_share == 0.80
    assert rs.claims.trace_code_reuse.action == "block"
    assert rs.claims.gender_restricted.action == "block"
    assert rs.claims.age_restricted.action == "block"
    assert rs.claims.duplicate_item.action == "warn"
    eg, dcs, ig = rs.fund.expenditure_growth, rs.fund.disease_cost_swing, rs.fund.inpatient_growth
    assert (eg.yellow, eg.red, eg.min_institution_base_fen, eg.lateness_hours) == (
        0.15, 0.30, 5_000_000, 24)
    assert eg.min_institution_base_yuan == 50000
    assert (dcs.yellow, dcs.red, dcs.min_cases, dcs.baseline_months) == (0.30, 0.60, 20, 3)
    assert (ig.yellow, ig.red) == (0.20, 0.40)
    p = rs.peer
    assert (p.threshold, p.consecutive_months, p.hysteresis, p.min_peers) == (1.2, 3, 0.05, 3)
    assert dict(p.min_visits) == {"hospital": 30, "department": 20, "doctor": 10, "pharmacy": 30}
    assert p.keys["doctor"] == ("region", "visit_kind", "institution_kind", "level", "specialty")
    assert p.enabled_rules == {"peer.cost_per_visit", "peer.drug_ratio"}
    assert rs.enabled_rules == ALL_RULES


def test_shipped_rules_are_valid_and_list_every_rule():
    rs = load_ruleset_file(SHIPPED)
    assert rs.version == "1"
    assert rs.enabled_rules == ALL_RULES
    assert rs.claims == default_ruleset().claims and rs.fund == default_ruleset().fund
    assert rs.peer == default_ruleset().peer
    text = SHIPPED.read_text(encoding="utf-8")
    for rule_id in ALL_RULES:
        assert f'[rules."{rule_id}"]' in text
    assert rs.catalogue.item("250601001").gender == "M"
    assert rs.catalogue.is_chronic("E11.900") and rs.catalogue.is_chronic("i10")
    assert not rs.catalogue.is_chronic("J06.9")


def test_catalogue_text_base_dir_and_runtime_document_agree():
    text = SHIPPED.read_text(encoding="utf-8")
    cat = (DATA_DIR / "catalogue.toml").read_text(encoding="utf-8")
    a = load_ruleset(text, catalogue_text=cat)
    b = load_ruleset(text, base_dir=DATA_DIR)
    c = load_ruleset_text(text)
    assert a == b == c
    assert hash(a) == hash(b)


def test_overrides_switches_and_region_time_zones():
    rs = load("""
version = "2"
timezone = "Asia/Shanghai"
[timezones]
"650102" = "Asia/Urumqi"
[peer]
threshold = 1.5
[peer.min_visits]
doctor = 15
[rules."peer.drug_ratio"]
enabled = false
[rules."claim.split_admission"]
action = "block"
window_hours = 240
[rules."claim.ghost_bed"]
enabled = false
[rules."fund.expenditure_growth"]
min_institution_base = 12345.67
[catalogue.chronic]
prefixes = ["i10", "E11"]
[catalogue.items."X1"]
gender = "F"
min_age = 12
""")
    assert rs.tz_for("650102") == "Asia/Urumqi" and rs.tz_for("610302") == "Asia/Shanghai"
    assert rs.peer.threshold == 1.5 and rs.peer.min_visits["doctor"] == 15
    assert rs.peer.min_visits["hospital"] == 30
    assert not rs.is_enabled("peer.drug_ratio") and rs.is_enabled("peer.cost_per_visit")
    assert rs.claims.split_admission.action == "block"
    assert rs.claims.split_admission.window_hours == 240
    assert not rs.is_enabled("claim.ghost_bed")
    assert "claim.ghost_bed" not in rs.enabled_rules
    assert rs.fund.expenditure_growth.min_institution_base_fen == 1_234_567
    assert rs.catalogue.chronic_prefixes == ("I10", "E11")
    assert rs.catalogue.item("X1").gender == "F" and rs.catalogue.item("X1").min_age == 12
    assert rs.params("claim.split_admission") is rs.claims.split_admission


def test_ruleset_is_frozen_and_hashable():
    rs = load_ruleset_file(SHIPPED)
    assert isinstance(hash(rs), int)
    with pytest.raises(AttributeError):
        rs.version = "9"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rs.peer.min_visits["doctor"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        rs.catalogue.items["X"] = None  # type: ignore[index]


def test_summary_is_small_json():
    summary = load_ruleset_file(SHIPPED).to_summary()
    assert summary["version"] == "1"
    assert summary["enabled_rules"] == list(ALL_RULES)
    assert set(summary["rules"]) == set(ALL_RULES)
    assert summary["rules"]["claim.split_admission"] == {
        "enabled": True, "action": "warn", "window_hours": 360}
    assert summary["catalogue"]["restricted_items"] >= 10
    assert len(json.dumps(summary)) < 5000


CAT = "\n[catalogue]\n"
BASE = 'version = "1"\n'


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[catalogue]\n", "version: required"),
        ("version = 3" + CAT, "version: must be a non-empty string"),
        ('version = ""' + CAT, "version: must be a non-empty string"),
        (BASE + "thresholds = 1" + CAT, "thresholds: unknown key"),
        (BASE + "this is = not toml", "document: not valid TOML"),
        (BASE, "catalogue: required"),
        (BASE + "catalogue = 5", "catalogue: must be a file name or a table"),
        (BASE + 'catalogue = "catalogue.toml"', "catalogue: names file 'catalogue.toml'"),
        (BASE + 'timezone = "Mars/Olympus"' + CAT, "timezone: unknown time zone 'Mars/Olympus'"),
        (BASE + '[timezones]\n"610302" = "Nowhere/X"' + CAT, "timezones.610302: unknown time zone"),
        (BASE + '[rules."claim.foo"]\nenabled = true' + CAT, "rules.claim.foo: unknown rule id"),
        (BASE + '[rules."claim.split_admission"]\naction = "deny"' + CAT,
         "rules.claim.split_admission.action: must be one of warn | block, got 'deny'"),
        (BASE + '[rules."claim.split_admission"]\nwindow_hours = 0' + CAT,
         "rules.claim.split_admission.window_hours: must be > 0"),
        (BASE + '[rules."claim.split_admission"]\nwindow_hours = -5' + CAT,
         "rules.claim.split_admission.window_hours: must be > 0"),
        (BASE + '[rules."claim.split_admission"]\nwindow_hours = "360"' + CAT,
         "rules.claim.split_admission.window_hours: must be an integer, got a string"),
        (BASE + '[rules."claim.split_admission"]\nwindow_hours = 1.5' + CAT,
         "rules.claim.split_admission.window_hours: must be an integer, got a number"),
        (BASE + '[rules."claim.split_admission"]\nenabled = "yes"' + CAT,
         "rules.claim.split_admission.enabled: must be true or false"),
        (BASE + '[rules."claim.split_admission"]\nwindow_days = 15' + CAT,
         "rules.claim.split_admission.window_days: unknown key"),
        (BASE + '[rules]\n"claim.ghost_bed" = 5' + CAT, "rules.claim.ghost_bed: must be a table"),
        (BASE + '[rules."claim.ghost_bed"]\nmax_bed_service_share = 1.5' + CAT,
         "rules.claim.ghost_bed.max_bed_service_share: must be > 0 and <= 1"),
        (BASE + '[rules."claim.pharmacy_frequency"]\ncount = 1' + CAT,
         "rules.claim.pharmacy_frequency.count: must be >= 2"),
        (BASE + '[rules."claim.duplicate_item"]\ncategories = ["lab"]' + CAT,
         "rules.claim.duplicate_item.categories: unknown values ['lab']"),
        (BASE + '[rules."claim.over_quantity"]\nchronic_days = 5' + CAT,
         "rules.claim.over_quantity.chronic_days: must be >= outpatient_days"),
        (BASE + '[rules."peer.drug_ratio"]\naction = "warn"' + CAT,
         "rules.peer.drug_ratio.action: unknown key"),
        (BASE + '[rules."fund.expenditure_growth"]\nred = 0.1' + CAT,
         "rules.fund.expenditure_growth.red: must be > yellow (0.15)"),
        (BASE + '[rules."fund.expenditure_growth"]\nmin_institution_base = "big"' + CAT,
         "rules.fund.expenditure_growth.min_institution_base: must be an amount in yuan"),
        (BASE + '[rules."fund.disease_cost_swing"]\nmin_cases = 0' + CAT,
         "rules.fund.disease_cost_swing.min_cases: must be > 0"),
        (BASE + "[peer]\nthreshold = 1.0" + CAT, "peer.threshold: must be > 1"),
        (BASE + "[peer]\nthreshold = 0.8" + CAT, "peer.threshold: must be > 1"),
        (BASE + "[peer]\nthreshold = true" + CAT, "peer.threshold: must be a number"),
        (BASE + "[peer]\nhysteresis = 0.3" + CAT, "peer.hysteresis: must be < threshold - 1"),
        (BASE + "[peer]\nmin_peers = 0" + CAT, "peer.min_peers: must be > 0"),
        (BASE + "[peer.min_visits]\nclinic = 5" + CAT, "peer.min_visits.clinic: unknown entity"),
        (BASE + "[peer.min_visits]\ndoctor = 0" + CAT,
         "peer.min_visits.doctor: must be an integer >= 1"),
        (BASE + '[peer.keys]\nhospital = ["region", "level"]' + CAT,
         "peer.keys.hospital: must include 'visit_kind'"),
        (BASE + '[peer.keys]\nhospital = ["visit_kind", "specialty"]' + CAT,
         "peer.keys.hospital: unknown fields ['specialty']"),
        (BASE + "[patient_history]\nretention_days = 1" + CAT,
         "patient_history.retention_days: must cover the longest patient window (15 days)"),
        (BASE + "[patient_history]\nmax_entries = 2" + CAT,
         "patient_history.max_entries: must be >= 8"),
        (BASE + '[catalogue.items."A1"]\ngender = "X"',
         "catalogue.items.A1.gender: must be \"M\" or \"F\", got 'X'"),
        (BASE + '[catalogue.items."A1"]\nmin_age = 60\nmax_age = 18',
         "catalogue.items.A1.max_age: must be >= min_age (60)"),
        (BASE + '[catalogue.items."A1"]\nmin_age = 200', "catalogue.items.A1.min_age: must be"),
        (BASE + '[catalogue.items."A1"]\nsex = "F"', "catalogue.items.A1.sex: unknown key"),
        (BASE + '[catalogue.chronic]\nprefixes = "I10"',
         "catalogue.chronic.prefixes: must be an array"),
    ],
)
def test_invalid_documents_are_refused_with_a_clear_error(text, expected):
    errors = errors_of(text)
    assert any(e.startswith(expected) for e in errors), errors


def test_every_problem_is_reported_at_once():
    errors = errors_of("""
[peer]
threshold = 1.0
[rules."claim.split_admission"]
window_hours = 0
action = "deny"
[rules."claim.nope"]
[catalogue]
""")
    assert len(errors) == 5, errors  # version, threshold, window, action, unknown rule
    assert str(RuleSetError(errors)).startswith("invalid rule set: ")


def test_referenced_catalogue_errors_name_the_file(tmp_path: Path):
    (tmp_path / "cat.toml").write_text('[items."A1"]\ngender = "Q"\n', encoding="utf-8")
    errors = errors_of('version = "1"\ncatalogue = "cat.toml"\n', base_dir=tmp_path)
    assert errors == ["catalogue (cat.toml).items.A1.gender: must be \"M\" or \"F\", got 'Q'"]
    errors = errors_of('version = "1"\ncatalogue = "missing.toml"\n', base_dir=tmp_path)
    assert errors[0].startswith("catalogue: cannot read 'missing.toml'")


def test_rules_io_reports_unreadable_files(tmp_path: Path):
    with pytest.raises(RuleSetError, match="cannot read"):
        load_ruleset_file(tmp_path / "absent.toml")
    with pytest.raises(RuleSetError, match="catalogue: cannot read"):
        load_ruleset_text('version = "1"\ncatalogue = "nope.toml"\n', base_dir=tmp_path)


def test_shipped_catalogue_covers_the_synthetic_feed():
    """The rule set must know every restriction the synthetic feed's labels rely on."""
    from service.synth import catalogue as synth

    cat = load_ruleset_file(SHIPPED).catalogue
    for code, item in synth.restricted_items().items():
        mine = cat.item(code)
        assert mine is not None, code
        assert (mine.gender, mine.min_age, mine.max_age) == (item.gender, item.min_age,
                                                             item.max_age), code
    assert set(synth.CHRONIC_DIAGNOSES) <= set(cat.chronic_prefixes)
    for code, item in synth.ITEMS.items():   # nothing the feed sells freely is restricted here
        if not (item.gender or item.min_age is not None or item.max_age is not None):
            assert cat.item(code) is None or not cat.item(code).restricted, code
    diagnoses = {d for rows in synth.OUTPATIENT_DX.values() for d, _ in rows}
    diagnoses |= {d for d, _ in synth.CHRONIC_PATIENT_DX}
    assert {d for d in diagnoses if cat.is_chronic(d)} == {
        d for d in diagnoses if synth.is_chronic(d)}


def test_rule_registry_covers_spec_ids():
    assert set(CLAIM_RULES) == {
        "claim.trace_code_reuse", "claim.gender_restricted", "claim.age_restricted",
        "claim.duplicate_item", "claim.over_quantity", "claim.split_admission",
        "claim.overlapping_stay", "claim.impossible_travel", "claim.pharmacy_frequency",
        "claim.excessive_exams", "claim.ghost_bed"}
    assert set(FUND_RULES) == {
        "fund.expenditure_growth", "fund.disease_cost_swing", "fund.inpatient_growth"}


def test_frozen_map_reads_like_a_dict():
    from detectors.ruleset_sections import FrozenMap

    m = FrozenMap({"a": 1})
    assert m.get("a") == 1 and m.get("b") is None and m.get("b", 2) == 2
    assert "a" in m and "b" not in m
    assert m == {"a": 1} and hash(m) == hash(FrozenMap({"a": 1}))
