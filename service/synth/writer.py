"""Streams settlements to ``settlements.jsonl`` day by day and writes ``labels.json``.

Each day's events (background, discharges due that day, scheduled anomalies) are sorted
by (event time, creation order), given ids ``{region}-{YYYYMMDD}-{seq:06d}``, written,
fed to the label oracles and dropped: memory holds one day plus open stays.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from .clock import Clock
from .funds import FundOracle
from .lines import Ev
from .peers import PeerOracle


class Writer:
    def __init__(self, path: Path, clock: Clock) -> None:
        self.clock = clock
        self.fh = path.open("wb", buffering=1 << 20)
        self.peers = PeerOracle(clock.months)
        self.funds = FundOracle(clock.months)
        self.ids: dict[str, str] = {}
        self.by_kind: Counter[str] = Counter()
        self.by_region: Counter[str] = Counter()
        self.count = 0
        self.last_ms = -1

    def day(self, day: int, events: list[Ev]) -> None:
        events.sort(key=lambda e: (e.ms, e.order))
        stamp = self.clock.day_date(day).strftime("%Y%m%d")
        seq: Counter[str] = Counter()
        out = []
        for ev in events:
            rec = ev.rec
            region = rec["region"]
            seq[region] += 1
            rec["settlement_id"] = sid = f"{region}-{stamp}-{seq[region]:06d}"
            if ev.key is not None:
                self.ids[ev.key] = sid
            if ev.ms < self.last_ms:
                raise AssertionError("events out of time order")
            self.last_ms = ev.ms
            out.append(orjson.dumps(rec))
            self.peers.update(ev)
            self.funds.update(ev)
            self.by_kind[rec["visit"]["kind"]] += 1
            self.by_region[region] += 1
        if out:
            out.append(b"")
            self.fh.write(b"\n".join(out))
        self.count += len(events)

    def close(self) -> None:
        self.fh.close()


def write_labels(path: Path, labels: dict) -> None:
    path.write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2) + b"\n")
