"""HTTP endpoints of interception (SPEC §7, §8, §10): ``/v1/check`` and ``/v1/rules``.

``POST /v1/check`` evaluates the claim rules for one settlement (SPEC §3 body) against the
current patient history and trace-code claims, changing nothing (no table write, no send):
checking twice gives the same answer and a checked-but-never-settled claim leaves no trace.
The state may live on other workers: each key is looked up where it lives — locally when
this worker holds the key's changelog partition, otherwise through the owning worker's
``POST /v1/internal/claims-state`` (owners from the partition assignor's table metadata,
keyed by :func:`service.claims_state.partition_for`), so every worker gives the same answer.
During a rebalance the answer is 503 with ``Retry-After``.

``GET /v1/rules`` summarises the active rule set; ``PUT /v1/rules`` (TOML body, bearer
token) validates a new one and publishes it to the ``rules`` topic, which every worker
follows (:mod:`service.rules_feed`). Bodies over ``max_body_bytes`` get 413.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import Request, Response, View

from detectors.claims import PatientHistory, TraceCodeState
from detectors.ruleset import RuleSetError

from .claims_stage import ClaimsStage
from .claims_state import check_hits, distinct_codes, error_reporter, partition_for
from .decisions import decision_record
from .rules_feed import RULES_KEY, load_document
from .runtime import Runtime
from .validation import Rejection, parse_settlement

INTERNAL_PATH = "/v1/internal/claims-state"
RULES_TYPES = ("text/plain", "application/toml", "application/octet-stream")
REMOTE_TIMEOUT_S = 2.0


class Unavailable(Exception):
    """Some state cannot be read right now (rebalance, owner unreachable)."""


class StateLookup:
    """Reads patient histories and trace claims wherever they live (read-only)."""

    def __init__(self, app: faust.App, rt: Runtime, stage: ClaimsStage) -> None:
        self.app, self.rt, self.stage = app, rt, stage
        self.n = rt.settings.partitions
        self._actives: tuple[int, frozenset[TP]] = (-1, frozenset())

    def _changelog(self, table: Any) -> str:
        return table.changelog_topic.get_topic_name()

    def actives(self) -> frozenset[TP]:
        """This worker's active partitions, built once per consumer generation (the
        assignor builds a new set of every topic's partitions at each call: ~a third of a
        check's CPU when asked once per key)."""
        if self.app.rebalancing or self.app.tables.recovery.in_recovery:
            raise Unavailable("partitions are being rebalanced")
        generation = self.app.consumer_generation_id
        if self._actives[0] != generation:
            self._actives = (generation, frozenset(self.app.assignor.assigned_actives()))
        return self._actives[1]

    def owner(self, table: Any, partition: int) -> str | None:
        """URL of the worker holding ``partition`` of ``table``; None when it is this one."""
        changelog = self._changelog(table)
        if TP(changelog, partition) in self.actives():
            return None
        for url, topics in self.app.router.table_metadata(table.name).items():
            if partition in topics.get(changelog, ()):
                return str(url)
        raise Unavailable(f"no worker holds partition {partition} of {table.name}")

    def owned(self, table: Any) -> list[int]:
        changelog = self._changelog(table)
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives()
                      if tp.topic == changelog)

    def local(self, patient_id: str | None, codes: list[str]) -> dict[str, Any]:
        h = self.stage.histories.get(patient_id) if patient_id is not None else None
        return {"patient": h, "codes": {c: self.stage.traces.get(c) for c in codes}}

    async def fetch(self, patient_id: str, codes: tuple[str, ...]
                    ) -> tuple[PatientHistory, dict[str, TraceCodeState | None]]:
        asks: dict[str | None, dict[str, Any]] = {}
        url = self.owner(self.stage.histories, partition_for(patient_id, self.n))
        asks.setdefault(url, {"patient": None, "codes": []})["patient"] = patient_id
        for code in codes:
            url = self.owner(self.stage.traces, partition_for(code, self.n))
            asks.setdefault(url, {"patient": None, "codes": []})["codes"].append(code)
        here = asks.pop(None, None)
        answers = [self.local(here["patient"], here["codes"])] if here else []
        answers += await asyncio.gather(*(self._remote(u, body) for u, body in asks.items()))
        history, states = PatientHistory(), {}
        for a in answers:
            if a["patient"]:
                history = PatientHistory.from_dict(a["patient"])
            for code, v in a["codes"].items():
                states[code] = TraceCodeState.from_dict(v) if v else None
        return history, states

    async def _remote(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.rt.settings.api_token:
            headers["Authorization"] = f"Bearer {self.rt.settings.api_token}"
        try:
            async with self.app.http_client.post(
                    url.rstrip("/") + INTERNAL_PATH, data=orjson.dumps(body), headers=headers,
                    timeout=aiohttp.ClientTimeout(total=REMOTE_TIMEOUT_S)) as resp:
                if resp.status != 200:
                    raise Unavailable(f"owner {url} answered {resp.status}")
                return orjson.loads(await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unavailable(f"owner {url} unreachable ({type(exc).__name__})") from None


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    data = bytearray()
    while chunk := await request.content.read(65536):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def bearer_ok(request: Request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def register(app: faust.App, rt: Runtime, stage: ClaimsStage, rules_topic: faust.TopicT) -> None:
    lookup = StateLookup(app, rt, stage)
    limit = rt.settings.max_body_bytes

    def answer(view: View, body: Any, status: int = 200, **headers: str) -> Response:
        return view.bytes(orjson.dumps(body), content_type="application/json", status=status,
                          headers=headers or None)

    def too_large(view: View) -> Response:
        return answer(view, {"error": f"body over {limit} bytes"}, 413)

    def write_denied(view: View, request: Request) -> Response | None:
        token = rt.settings.api_token
        if token:
            if bearer_ok(request, token):
                return None
            return answer(view, {"error": "bearer token required"}, 401,
                          **{"WWW-Authenticate": "Bearer"})
        if rt.settings.allow_unauthenticated_writes:
            return None
        return answer(view, {"error": "writes disabled: set FUND_SENTINEL_API_TOKEN"}, 403)

    @app.page("/v1/check")
    class Check(View):
        async def post(self, request: Request) -> Response:
            started = time.perf_counter()
            body = await read_body(request, limit)
            if body is None:
                return too_large(self)
            parsed = parse_settlement(body)
            if isinstance(parsed, Rejection):
                return answer(self, {"reason": parsed.reason, "errors": list(parsed.errors)}, 400)
            s = parsed[0]
            try:
                history, states = await lookup.fetch(s.patient.id, distinct_codes(s))
            except Unavailable as exc:
                return answer(self, {"error": f"claim state unavailable: {exc}"}, 503,
                              **{"Retry-After": "1"})
            rs = rt.ruleset
            hits = check_hits(rs, history, states, s, error_reporter(rt.metrics, s.settlement_id))
            record = decision_record(s, rs.version, hits)
            rt.metrics.check_seconds.observe(time.perf_counter() - started)
            return answer(self, record)

    @app.page("/v1/rules")
    class Rules(View):
        async def get(self, request: Request) -> Response:
            return answer(self, rt.ruleset.to_summary())

        async def put(self, request: Request) -> Response:
            denied = write_denied(self, request)
            if denied is not None:
                return denied
            if request.content_type not in RULES_TYPES:
                return answer(self, {"error": "Content-Type must be text/plain or "
                                     "application/toml (a TOML rule-set document)"}, 415)
            body = await read_body(request, limit)
            if body is None:
                return too_large(self)
            try:
                ruleset = load_document(body.decode("utf-8"), rt.settings)
            except UnicodeDecodeError:
                return answer(self, {"error": "invalid rule set", "errors": ["$: not UTF-8"]},
                              400)
            except RuleSetError as exc:
                return answer(self, {"error": "invalid rule set", "errors": exc.errors}, 400)
            fut = await rules_topic.send(key=RULES_KEY, value=body, partition=0)
            await asyncio.wait_for(asyncio.ensure_future(fut), timeout=10)
            return answer(self, {"status": "published", "version": ruleset.version,
                                 "active_version": rt.rules_version}, 202)

    @app.page(INTERNAL_PATH)
    class InternalState(View):
        """Worker-to-worker reads for ``/v1/check``; bearer token when one is configured."""

        async def get(self, request: Request) -> Response:
            return answer(self, {"partitions": lookup.owned(stage.histories),
                                 "rules_version": rt.rules_version})

        async def post(self, request: Request) -> Response:
            token = rt.settings.api_token
            if token and not bearer_ok(request, token):
                return answer(self, {"error": "bearer token required"}, 401)
            body = await read_body(request, limit)
            if body is None:
                return too_large(self)
            try:
                ask = orjson.loads(body)
                pid, codes = ask.get("patient"), [str(c) for c in ask.get("codes", ())]
                keys = [(stage.traces, c) for c in codes]
                if pid is not None:
                    keys.append((stage.histories, str(pid)))
                if any(lookup.owner(t, partition_for(k, lookup.n)) is not None for t, k in keys):
                    raise Unavailable("not the owner of every key asked")
            except Unavailable as exc:
                return answer(self, {"error": str(exc)}, 503)
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                return answer(self, {"error": "expected {\"patient\", \"codes\"}"}, 400)
            return answer(self, lookup.local(pid, codes))
