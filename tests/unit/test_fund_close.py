"""detectors.fund.close and the offline runner: month close by event time, late events (§7b)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from detectors.domain import Settlement
from detectors.fund import Closing, RegionClock, affected_months, close_ms, iso_local, observe
from detectors.fund.offline import run_fund_monitors
from detectors.ruleset import default_ruleset
from factories import make_settlement

DAY_MS = 86_400_000
SH, UTC = "Asia/Shanghai", "UTC"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "alert.schema.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def run(times: list[str], tz: str = SH, lateness_ms: int = DAY_MS
        ) -> tuple[RegionClock, list[Closing | None]]:
    clock, out = RegionClock(), []
    for t in times:
        clock, change = observe(clock, ms(t), tz, lateness_ms)
        out.append(change)
    return clock, out


NOV = "2025-11-18T10:00:00+08:00"


@pytest.mark.parametrize(
    ("case", "times", "tz", "lateness_ms", "last"),
    [
        ("first event closes nothing", [NOV], SH, DAY_MS, None),
        ("at month end: still open", [NOV, "2025-12-01T00:00:00+08:00"], SH, DAY_MS, None),
        ("1 ms before month end + 24 h: open",
         [NOV, "2025-12-01T23:59:59.999+08:00"], SH, DAY_MS, None),
        ("exactly month end + 24 h: closed", [NOV, "2025-12-02T00:00:00+08:00"], SH, DAY_MS,
         Closing(("2025-11",))),
        ("lateness 0: closes at month end", [NOV, "2025-12-01T00:00:00+08:00"], SH, 0,
         Closing(("2025-11",))),
        ("month end in the region's zone (UTC)", [NOV, "2025-12-02T00:00:00+08:00"], UTC,
         DAY_MS, None),
        ("UTC month end + 24 h", [NOV, "2025-12-02T08:00:00+08:00"], UTC, DAY_MS,
         Closing(("2025-11",))),
        ("a jump closes every month in between", [NOV, "2026-02-02T00:00:00+08:00"], SH,
         DAY_MS, Closing(("2025-11", "2025-12", "2026-01"))),
        ("late event for a closed month",
         [NOV, "2025-12-02T00:00:00+08:00", "2025-11-30T23:00:00+08:00"], SH, DAY_MS,
         Closing((), "2025-11")),
        ("event in the lateness window is on time",
         [NOV, "2025-12-01T12:00:00+08:00", "2025-11-30T23:00:00+08:00"], SH, DAY_MS, None),
        ("older month before any close is late",
         [NOV, "2025-10-20T10:00:00+08:00"], SH, DAY_MS, Closing((), "2025-10")),
        ("earlier open month becomes where closing starts",
         ["2025-12-01T12:00:00+08:00", "2025-11-30T23:00:00+08:00",
          "2025-12-02T00:00:00+08:00"], SH, DAY_MS, Closing(("2025-11",))),
        ("each month closes once",
         [NOV, "2025-12-02T00:00:00+08:00", "2025-12-20T00:00:00+08:00"], SH, DAY_MS, None),
    ],
)
def test_observe(case, times, tz, lateness_ms, last):
    clock, changes = run(times, tz, lateness_ms)
    assert changes[-1] == last, case
    assert RegionClock.from_dict(json.loads(json.dumps(clock.to_dict()))) == clock


def test_a_late_event_does_not_move_the_clock_back():
    clock, _ = run([NOV, "2025-12-02T00:00:00+08:00"])
    after, change = observe(clock, ms("2025-11-01T00:00:00+08:00"), SH, DAY_MS)
    assert change == Closing((), "2025-11")
    assert after == clock


def test_announced_months_stay_closed_when_lateness_grows():
    clock, _ = run([NOV, "2025-12-02T00:00:00+08:00"])
    _, change = observe(clock, ms("2025-11-30T00:00:00+08:00"), SH, 10 * DAY_MS)
    assert change == Closing((), "2025-11")


@pytest.mark.parametrize(
    ("now", "month", "lookahead", "expected"),
    [
        ("2025-12-02T00:00:00+08:00", "2025-11", 1, ("2025-11",)),
        ("2026-01-02T00:00:00+08:00", "2025-11", 1, ("2025-11", "2025-12")),
        ("2026-03-05T00:00:00+08:00", "2025-11", 1, ("2025-11", "2025-12")),
        ("2026-03-05T00:00:00+08:00", "2025-11", 3, ("2025-11", "2025-12", "2026-01", "2026-02")),
        ("2025-12-01T12:00:00+08:00", "2025-11", 3, ()),
    ],
)
def test_affected_months(now, month, lookahead, expected):
    clock, _ = run([NOV, now])
    assert affected_months(clock, month, lookahead, SH, DAY_MS) == expected


@pytest.mark.parametrize(
    ("t_ms", "tz", "text"),
    [(close_ms("2025-11", SH, DAY_MS), SH, "2025-12-02T00:00:00+08:00"),
     (close_ms("2025-11", UTC, DAY_MS), UTC, "2025-12-02T00:00:00+00:00"),
     (ms("2025-12-02T00:00:00.250+08:00"), SH, "2025-12-02T00:00:00.250+08:00")],
)
def test_iso_local(t_ms, tz, text):
    assert iso_local(t_ms, tz) == text


# ---- the offline runner: closing, late events and the alerts they update ----------------------

RS = default_ruleset("7")


def sale(at: str, fund_yuan: int, inst: str = "H0007", **kw) -> Settlement:
    s = make_settlement(at=at, institution_id=inst, **kw)
    return dataclasses.replace(s, fund_fen=fund_yuan * 100, total_fen=fund_yuan * 100)


def summary(alerts: list[dict]) -> list[tuple]:
    for a in alerts:
        VALIDATOR.validate({**a, "emitted_at": "2026-01-01T00:00:00+08:00"})
    return [(a["rule"], a["entity"]["kind"], a["period"], a["level"], a["status"])
            for a in alerts]


def net_firing(alerts: list[dict]) -> set[str]:
    last: dict[str, str] = {}
    for a in alerts:
        last[a["alert_id"]] = a["status"]
    return {k for k, v in last.items() if v == "firing"}


EG = "fund.expenditure_growth"
# October 40,000 yuan (below the institution base, so only the region is watched), November
# +14 %, then an event that closes November.
BASE = [sale("2025-10-10T10:00:00+08:00", 40_000), sale("2025-11-10T10:00:00+08:00", 45_600),
        sale("2025-12-02T00:00:00+08:00", 100)]


@pytest.mark.parametrize(
    ("case", "late", "expected"),
    [
        ("closed at +14 %: no card", [], []),
        ("a late event that pushes growth over the threshold fires",
         [sale("2025-11-30T22:00:00+08:00", 1_200)],
         [(EG, "region", "2025-11", "yellow", "firing")]),
        ("late events up to exactly +30 %: still only yellow",
         [sale("2025-11-30T22:00:00+08:00", 1_200), sale("2025-11-30T23:00:00+08:00", 5_200)],
         [(EG, "region", "2025-11", "yellow", "firing")]),
        ("then over +30 %: red fires, yellow resolved as superseded",
         [sale("2025-11-30T22:00:00+08:00", 1_200), sale("2025-11-30T23:00:00+08:00", 5_200),
          sale("2025-11-29T10:00:00+08:00", 400)],
         [(EG, "region", "2025-11", "yellow", "firing"),
          (EG, "region", "2025-11", "red", "firing"),
          (EG, "region", "2025-11", "yellow", "resolved")]),
        ("a late event in the baseline month pulls it back: resolved",
         [sale("2025-11-30T22:00:00+08:00", 1_200), sale("2025-10-31T10:00:00+08:00", 10_000)],
         [(EG, "region", "2025-11", "yellow", "firing"),
          (EG, "region", "2025-11", "yellow", "resolved")]),
        ("a late event under the threshold changes nothing",
         [sale("2025-11-30T22:00:00+08:00", 100)], []),
    ],
)
def test_late_events_update_alerts(case, late, expected):
    alerts = run_fund_monitors(BASE + late, RS)
    assert summary(alerts) == expected, case
    assert all(a["event_time"] == "2025-12-02T00:00:00+08:00" for a in alerts)


def test_resolution_carries_the_current_evidence():
    late = [sale("2025-11-30T22:00:00+08:00", 1_200), sale("2025-10-31T10:00:00+08:00", 10_000)]
    fired, resolved = run_fund_monitors(BASE + late, RS)
    assert fired["alert_id"] == resolved["alert_id"]
    assert fired["evidence"]["previous"] == [40_000.0] and fired["ratio"] == 1.17
    assert resolved["evidence"]["previous"] == [50_000.0]
    assert resolved["evidence"]["reason"] == "below_threshold"


def test_replay_in_time_order_gives_no_transient_alerts_and_the_same_net_state():
    late = [sale("2025-11-30T22:00:00+08:00", 1_200), sale("2025-10-31T10:00:00+08:00", 10_000)]
    live = run_fund_monitors(BASE + late, RS)
    replay = run_fund_monitors(sorted(BASE + late, key=lambda s: s.settled_at_ms), RS)
    assert replay == [] and net_firing(live) == net_firing(replay) == set()


def test_same_input_same_alerts():
    inputs = BASE + [sale("2025-11-30T22:00:00+08:00", 9_000)]
    assert run_fund_monitors(inputs, RS) == run_fund_monitors(inputs, RS)


def test_open_months_are_not_evaluated_when_input_ends():
    inputs = BASE[:2] + [sale("2025-11-30T22:00:00+08:00", 20_000),
                         sale("2025-12-01T23:59:59+08:00", 100)]
    assert run_fund_monitors(inputs, RS) == []
    closing = sale("2025-12-02T00:00:00+08:00", 100)
    assert summary(run_fund_monitors(inputs + [closing], RS)) == [
        (EG, "region", "2025-11", "red", "firing")]


def test_institution_growth_needs_the_minimum_base():
    inputs = [sale("2025-10-10T10:00:00+08:00", 60_000, inst="H1"),
              sale("2025-10-10T10:00:00+08:00", 40_000, inst="H2"),
              sale("2025-11-10T10:00:00+08:00", 72_000, inst="H1"),
              sale("2025-11-10T10:00:00+08:00", 80_000, inst="H2"),
              sale("2025-12-02T00:00:00+08:00", 1, inst="H1")]
    alerts = run_fund_monitors(inputs, RS)
    assert summary(alerts) == [(EG, "institution", "2025-11", "yellow", "firing"),
                               (EG, "region", "2025-11", "red", "firing")]
    assert alerts[0]["entity"]["id"] == "H1" and alerts[0]["visit_kind"] is None


def test_disease_cost_swing_end_to_end():
    def month(m: str, n: int, cost: int) -> list[Settlement]:
        return [dataclasses.replace(
            make_settlement(kind="inpatient", at=f"{m}-10T10:00:00+08:00", diagnoses=["K40.9"]),
            total_fen=cost * 100, fund_fen=0) for _ in range(n)]
    inputs = (month("2025-08", 5, 900) + month("2025-09", 5, 1000) + month("2025-10", 5, 1100)
              + month("2025-11", 20, 1310) + [sale("2025-12-02T00:00:00+08:00", 0)])
    alerts = [a for a in run_fund_monitors(inputs, RS) if a["rule"] == "fund.disease_cost_swing"]
    assert summary(alerts) == [("fund.disease_cost_swing", "diagnosis", "2025-11", "yellow",
                                "firing")]
    a = alerts[0]
    assert (a["entity"]["id"], a["visit_kind"], a["n"], a["peer_entities"]) == (
        "K40", "inpatient", 20, 3)
    assert a["evidence"]["previous"] == [1100.0, 1000.0, 900.0] and a["peer_mean"] == 1000.0


def test_inpatient_growth_end_to_end_with_cmi():
    def stays(m: str, n: int, weight: float) -> list[Settlement]:
        return [make_settlement(kind="inpatient", at=f"{m}-10T10:00:00+08:00",
                                institution_id="H9", drg_code="ES23", drg_weight=weight)
                for _ in range(n)]
    inputs = stays("2025-10", 10, 1.0) + stays("2025-11", 10, 1.5) + [
        sale("2025-12-02T00:00:00+08:00", 0, inst="H9")]
    alerts = [a for a in run_fund_monitors(inputs, RS) if a["rule"] == "fund.inpatient_growth"]
    assert summary(alerts) == [("fund.inpatient_growth", "institution", "2025-11", "red",
                                "firing")]
    assert alerts[0]["evidence"]["measure"] == "cmi" and alerts[0]["visit_kind"] == "inpatient"
    assert (alerts[0]["observed"], alerts[0]["peer_mean"]) == (1.5, 1.0)


def test_disabled_rules_are_not_evaluated():
    fund = dataclasses.replace(
        RS.fund, expenditure_growth=dataclasses.replace(RS.fund.expenditure_growth,
                                                        enabled=False))
    off = dataclasses.replace(RS, fund=fund)
    assert run_fund_monitors(BASE + [sale("2025-11-30T22:00:00+08:00", 9_000)], off) == []
