"""``POST /v1/check`` answers the same on every worker (SPEC §7): two workers split the
partitions, and each check needs a patient history and trace-code claims that may live on
either worker; both must give the full answer for patients owned by either."""

from __future__ import annotations

import pytest
from factories import T0_MS, drug, exam, make_event, service
from support.claims_http import base, check, decisions_for, http, publish, start_worker, wait_until
from support.cluster import create_all_topics, unique_settings

from service.claims_state import partition_for
from service.rules_io import DEFAULT_RULES_PATH

pytestmark = pytest.mark.broker

N = 4


def patients_per_partition(k: int) -> list[str]:
    ids: dict[int, list[str]] = {q: [] for q in range(N)}
    i = 0
    while any(len(v) < k for v in ids.values()):
        pid = f"p-{i:05d}"
        if len(ids[partition_for(pid, N)]) < k:
            ids[partition_for(pid, N)].append(pid)
        i += 1
    return [p for q in range(N) for p in ids[q]]


def owned(worker) -> set[int]:
    status, body = http("GET", base(worker) + "/v1/internal/claims-state")
    return set(body["partitions"]) if status == 200 else set()


def test_check_answers_the_same_on_both_workers(embedded_broker, tmp_path):
    settings = unique_settings(embedded_broker.url, partitions=N)
    create_all_topics(settings)
    env = {"FUND_SENTINEL_ALLOW_UNAUTHENTICATED_WRITES": "true"}
    workers = [start_worker(settings, tmp_path / f"w{i}", env) for i in (1, 2)]
    try:
        def split() -> bool:
            a, b = owned(workers[0]), owned(workers[1])
            return bool(a) and bool(b) and not (a & b) and a | b == set(range(N))

        wait_until(split, 90, "the two workers to split the partitions", every_s=0.5)
        patients = patients_per_partition(2)
        settled = []
        for i, pid in enumerate(patients):  # one visit and one sale with a code per patient
            settled.append(make_event(settlement_id=f"V-{pid}", patient_id=pid,
                                      items=[service(), exam()]))
            settled.append(make_event(kind="pharmacy", settlement_id=f"S-{pid}",
                                      patient_id=pid, at=T0_MS + 60_000,
                                      items=[drug(trace_codes=[f"TC-{i:04d}"])]))
        publish(settings, settled)
        decisions_for(settings, {e["settlement_id"] for e in settled}, timeout_s=90)
        wait_until(split, 30, "a stable split after processing", every_s=0.5)

        owners = {0: owned(workers[0]), 1: owned(workers[1])}
        where = {pid: next(w for w, qs in owners.items() if partition_for(pid, N) in qs)
                 for pid in patients}
        assert set(where.values()) == {0, 1}  # patients on both workers
        for i, pid in enumerate(patients):
            other = (i + 3) % len(patients)  # a code settled by another patient
            probe = make_event(settlement_id=f"Q-{pid}", patient_id=pid, at=T0_MS + 120_000,
                               items=[exam(), drug(trace_codes=[f"TC-{other:04d}", "TC-NEW"])])
            answers = [check(w, probe) for w in workers]
            assert answers[0] == answers[1], (pid, answers)
            status, body = answers[0]
            assert status == 200
            assert [(h["rule"], h["items"]) for h in body["hits"]] == [
                ("claim.trace_code_reuse", [f"TC-{other:04d}"]),
                ("claim.duplicate_item", ["220201001"])], body
            assert body["hits"][0]["related"] == [f"S-{patients[other]}"]

        # a rule set published through one worker is used by both (SPEC §8)
        doc = DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace(
            'version = "1"', 'version = "2"').replace(
            '[rules."claim.duplicate_item"]\nenabled = true',
            '[rules."claim.duplicate_item"]\nenabled = false')
        status, _ = http("PUT", base(workers[0]) + "/v1/rules", doc.encode(),
                         {"Content-Type": "text/plain"})
        assert status == 202
        for w in workers:
            wait_until(lambda w=w: http("GET", base(w) + "/v1/rules")[1]["version"] == "2", 15,
                       "every worker to switch to version 2")
        pid = patients[0]
        probe = make_event(settlement_id=f"Q-{pid}", patient_id=pid, at=T0_MS + 120_000,
                           items=[exam(), drug(trace_codes=["TC-0003"])])
        answers = [check(w, probe) for w in workers]
        assert answers[0] == answers[1]
        assert answers[0][1]["rules_version"] == "2"
        assert [h["rule"] for h in answers[0][1]["hits"]] == ["claim.trace_code_reuse"]
    except BaseException:
        for w in workers:
            print(w.log_tail(80))
        raise
    finally:
        for w in workers:
            w.stop()
