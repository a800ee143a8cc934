"""Trace-code claims stored as one changelog record per partition per batch.

A settlement carries ~8 drug traceability codes and each is claimed once, by its first
settlement: one table key per code meant ~8 changelog records per settlement, half of all
the pipeline's writes. :class:`ClaimLog` shows the claims stage the same mapping (code →
``{"id", "at_ms"}``) but persists, at :meth:`flush`, one record per partition holding
every code claimed there since the last flush. The in-memory index (code → claim) of a
partition is rebuilt from its records the first time the partition is used.

Record keys are ``"<partition>|<writer nonce>|<sequence>"``: unique even when a batch is
re-processed after a crash, so a re-processed batch never overwrites an earlier record.
A code found in two records (a claim expired and claimed again) resolves to the later
claim (larger ``at_ms``), whatever order the records are read in. A record is deleted
(tombstone) once none of its codes is live.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

Claim = dict[str, Any]  # {"id": settlement id, "at_ms": event time}


def record_partition(record_key: str) -> int:
    return int(record_key.split("|", 1)[0])


def claims_from_records(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Claim]:
    """Every live claim (code → claim) in a set of records; the later claim wins."""
    out: dict[str, Claim] = {}
    for value in records.values():
        for code, (sid, at_ms) in value.items():
            known = out.get(code)
            if known is None or at_ms > known["at_ms"]:
                out[code] = {"id": sid, "at_ms": at_ms}
    return out


class ClaimLog(MutableMapping[str, Claim]):
    """code → claim, persisted in ``table`` (record key → {code: [id, at_ms]})."""

    def __init__(self, table: MutableMapping[str, Any], partition_of: Callable[[str], int]):
        self.table, self.partition_of = table, partition_of
        self.nonce = os.urandom(6).hex()
        self.seq = 0
        self.index: dict[str, tuple[Claim, str | None]] = {}  # code -> (claim, record)
        self.live: dict[str, set[str]] = {}  # record -> its codes still in the index
        self.pending: dict[int, dict[str, Claim]] = {}  # partition -> unflushed claims
        self.indexed: set[int] = set()

    # ---- what Faust's table would offer the web views ---------------------------------

    @property
    def name(self) -> str:
        return self.table.name  # type: ignore[attr-defined, no-any-return]

    @property
    def changelog_topic(self) -> Any:
        return self.table.changelog_topic  # type: ignore[attr-defined]

    # ---- index ------------------------------------------------------------------------

    def ensure_indexed(self, partition: int) -> None:
        if partition in self.indexed:
            return
        records = {k: v for k, v in self.table.items()
                   if v and record_partition(k) == partition}
        for key, value in records.items():
            for code, (sid, at_ms) in value.items():
                known = self.index.get(code)
                if known is not None and known[0]["at_ms"] >= at_ms:
                    continue
                self._point(code, {"id": sid, "at_ms": at_ms}, key)
        for key in records:
            if not self.live.get(key):
                self.live.pop(key, None)
                del self.table[key]  # nothing live left in it (superseded claims)
        self.indexed.add(partition)

    def forget(self, partition: int) -> None:
        """Drop a revoked partition's index (rebuilt from the table if it comes back)."""
        self.indexed.discard(partition)
        self.pending.pop(partition, None)
        for code in [c for c in self.index if self.partition_of(c) == partition]:
            _, record = self.index.pop(code)
            if record is not None:
                self.live.pop(record, None)

    def _point(self, code: str, claim: Claim, record: str | None) -> None:
        old = self.index.get(code)
        if old is not None and old[1] is not None:
            self._unlink(code, old[1])
        self.index[code] = (claim, record)
        if record is not None:
            self.live.setdefault(record, set()).add(code)

    def _unlink(self, code: str, record: str) -> None:
        codes = self.live.get(record)
        if codes is None:
            return
        codes.discard(code)
        if not codes:
            del self.live[record]
            self.table.pop(record, None)  # tombstone: none of its claims is live

    # ---- mapping ----------------------------------------------------------------------

    def __getitem__(self, code: str) -> Claim:
        self.ensure_indexed(self.partition_of(code))
        return self.index[code][0]

    def __setitem__(self, code: str, claim: Claim) -> None:
        q = self.partition_of(code)
        self.ensure_indexed(q)
        self._point(code, dict(claim), None)
        self.pending.setdefault(q, {})[code] = dict(claim)

    def __delitem__(self, code: str) -> None:
        q = self.partition_of(code)
        self.ensure_indexed(q)
        _, record = self.index.pop(code)
        self.pending.get(q, {}).pop(code, None)
        if record is not None:
            self._unlink(code, record)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.index))

    def __len__(self) -> int:
        return len(self.index)

    # ---- persistence ------------------------------------------------------------------

    def flush(self) -> int:
        """Write one record per partition with claims since the last flush; returns records."""
        pending, self.pending = self.pending, {}
        written = 0
        for q, claims in sorted(pending.items()):
            live = {c: v for c, v in claims.items() if self.index.get(c, (None, 0))[1] is None}
            if not live:
                continue
            self.seq += 1
            key = f"{q}|{self.nonce}|{self.seq}"
            self.table[key] = {c: [v["id"], v["at_ms"]] for c, v in live.items()}
            for code, claim in live.items():
                self._point(code, claim, key)
            written += 1
        return written
