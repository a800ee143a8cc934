"""Event-time low watermark over input partitions (detectors.watermarks)."""

import pytest

from detectors.watermarks import IDLE, Watermarks, should_tick


@pytest.mark.parametrize("steps,low", [
    ([], None),                                   # nobody has spoken
    ([(0, 100)], None),                           # one of two origins only
    ([(0, 100), (1, 50)], 50),                    # the slowest origin holds it back
    ([(0, 100), (1, 50), (1, 40)], 50),           # clocks never go back
    ([(0, 100), (1, IDLE)], 100),                 # an idle origin holds nothing back
    ([(0, 100), (1, IDLE), (1, 70)], 70),         # data after idle resumes its clock
    ([(0, 100), (7, 5)], None),                   # an out-of-range origin is ignored
])
def test_low_watermark(steps, low):
    wm = Watermarks.empty(2)
    for origin, ms in steps:
        wm = wm.advance(origin, ms)
    assert wm.low_ms == low


def test_round_trip_and_immutability():
    wm = Watermarks.empty(3).advance(0, 10).advance(2, IDLE)
    assert Watermarks.from_dict(wm.to_dict()) == wm
    same = wm.advance(0, 5)
    assert same is wm


@pytest.mark.parametrize("last,now,interval,expected", [
    (None, 0, 10, True), (0, 9, 10, False), (0, 10, 10, True), (20, 10, 10, False)])
def test_should_tick(last, now, interval, expected):
    assert should_tick(last, now, interval) is expected
