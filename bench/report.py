"""The benchmark's headline figures and its Markdown table (bench/results.md)."""

from __future__ import annotations

from typing import Any

from service.claims_state import TRACE_TABLE

HEADLINE_KEYS = (
    "throughput_per_s", "decided_per_s", "drained_per_s",
    "latency_rate_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "check_p50_ms", "check_p99_ms", "worker_rss_mb", "worker_peak_rss_mb",
    "bytes_per_entity_month", "bytes_per_patient", "bytes_per_trace_code", "baseline_per_s", "ratio_to_baseline",
    "two_workers_per_s", "two_vs_one",
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _mean_bytes(state: dict, table: str) -> float | None:
    t = state["tables"].get(table)
    if not t or t["mean_value_bytes"] is None:
        return None
    return round(t["mean_key_bytes"] + t["mean_value_bytes"], 1)


def _bytes_per_claim(state: dict) -> float | None:
    """Trace claims live in batch records (service.claim_log): bytes over claims held."""
    t = state["tables"].get(TRACE_TABLE)
    if not t or not t.get("claims"):
        return None
    return round(t["live_bytes"] / t["claims"], 1)


def headline(pipe: dict, base: dict, two: dict | None) -> dict[str, Any]:
    tp, lat, chk = pipe["throughput"], pipe["latency"], pipe["check"]
    mem = pipe["memory"]["worker"]
    return {
        "throughput_per_s": tp["sustained_per_s"],
        "decided_per_s": tp["decided_per_s"],
        "drained_per_s": tp["drained_per_s"],
        "latency_rate_per_s": lat["rate_per_s"],
        "latency_p50_ms": lat["end_to_end"]["p50_ms"],
        "latency_p95_ms": lat["end_to_end"]["p95_ms"],
        "latency_p99_ms": lat["end_to_end"]["p99_ms"],
        "check_p50_ms": chk.get("p50_ms"),
        "check_p99_ms": chk.get("p99_ms"),
        "worker_rss_mb": mem["rss_mb"],
        "worker_peak_rss_mb": mem["peak_rss_mb"],
        "bytes_per_entity_month": _mean_bytes(pipe["state"], "entity-months-v1"),
        "bytes_per_patient": _mean_bytes(pipe["state"], "patient-history-v1"),
        "bytes_per_trace_code": _bytes_per_claim(pipe["state"]),
        "baseline_per_s": base["per_s"],
        "ratio_to_baseline": _ratio(tp["sustained_per_s"], base["per_s"]),
        "two_workers_per_s": two["sustained_per_s"] if two else None,
        "two_vs_one": _ratio(two["sustained_per_s"], tp["sustained_per_s"]) if two else None,
    }


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = (f"{v:,.3f}" if abs(v) < 1 else f"{v:,.2f}" if abs(v) < 10
             else f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}")
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def markdown(results: dict) -> str:
    h, m, d = results["headline"], results["machine"], results["data"]
    pipe = results["pipeline"]
    tp, lat, chk = pipe["throughput"], pipe["latency"], pipe["check"]
    per = pipe["state"]["per_settlement"]
    two = results.get("two_workers") or {}
    cpu_ms = lat.get("cpu_ms_per_settlement") or {}
    cpu_full = tp.get("cpu_ms_per_settlement") or {}
    errors = {**pipe.get("worker_errors", {})}
    for k, v in (two.get("worker_errors") or {}).items():
        errors[k] = errors.get(k, 0) + v
    cpu = f"{m['nproc']} × {m['cpu']}, {m['ram_gb']} GB RAM, Python {m['python']}"
    pk = m["packages"]
    check_note = (f"{chk.get('concurrency')} in flight, {_fmt(chk.get('requests_per_s'))} req/s, "
                  f"statuses {chk.get('statuses')}" if "error" not in chk else chk["error"])
    rows = [
        ("Sustained throughput (1 worker)", _fmt(h["throughput_per_s"], " settlements/s"),
         f"min of: first→last decision {_fmt(h['decided_per_s'])}/s; "
         f"until every stage drained {_fmt(h['drained_per_s'])}/s"
         + (f" (not drained: lag {tp['not_drained_lag']})" if tp.get("not_drained_lag")
            else "")),
        ("End-to-end latency p50 / p95 / p99",
         f"{_fmt(h['latency_p50_ms'])} / {_fmt(h['latency_p95_ms'])} / "
         f"{_fmt(h['latency_p99_ms'])} ms",
         f"settlement produced → decision read, {lat['sent']} sent at "
         f"{_fmt(h['latency_rate_per_s'])}/s over {_fmt(lat.get('sending_s'))} s; last decision "
         f"{_fmt(lat.get('last_decision_after_last_send_s'))} s after the last send"),
        ("`POST /v1/check` p50 / p99",
         f"{_fmt(h['check_p50_ms'])} / {_fmt(h['check_p99_ms'])} ms", check_note),
        ("Worker RSS (now / peak)",
         f"{_fmt(h['worker_rss_mb'])} / {_fmt(h['worker_peak_rss_mb'])} MiB",
         f"after {_fmt(tp['settlements'] + lat['sent'])} settlements, memory:// store"),
        ("State per entity-month / per patient / per trace code",
         f"{_fmt(h['bytes_per_entity_month'])} / {_fmt(h['bytes_per_patient'])} / "
         f"{_fmt(h.get('bytes_per_trace_code'))} bytes",
         "latest changelog record per key (key + value); trace claims: batch records / "
         "claims held"),
        ("Per settlement: changelog writes / internal messages",
         f"{_fmt(per['changelog_writes'])} / {_fmt(per['internal_messages'])}",
         f"messages are batches (one per partition per batch); event-time tick items "
         f"{_fmt(per['internal_ticks'])} per settlement"),
        ("CPU per settlement, worker / broker",
         f"{_fmt(cpu_full.get('worker'))} / {_fmt(cpu_full.get('broker'))} ms",
         f"during the throughput run; at ~50 % load {_fmt(cpu_ms.get('worker'))} / "
         f"{_fmt(cpu_ms.get('broker'))} ms; {m['nproc']} cores in all"),
        ("Baseline: trivial Faust agent, same topic", _fmt(h["baseline_per_s"], " msgs/s"),
         f"pipeline / baseline = {_fmt(h['ratio_to_baseline'])}"),
        ("2 workers vs 1", _fmt(h["two_workers_per_s"], " settlements/s"),
         f"ratio {_fmt(h['two_vs_one'])}; assignments per worker {two.get('assignments')}; "
         f"{m['nproc']} cores shared with the broker: no speed-up expected"),
    ]
    lines = [
        f"Benchmark of {results['date']} on {cpu}; faust-streaming {pk.get('faust-streaming')},"
        f" aiokafka {pk.get('aiokafka')}, orjson {pk.get('orjson')}, embedded broker (Tansu)"
        f" on the same machine. Load average (1/5/15 min) at start"
        f" {m.get('load_average_at_start')}, at end {m.get('load_average_at_end')}.",
        f"N = {_fmt(d['settlements'])} generated settlements "
        f"({d['items_per_settlement']} items, {d['bytes_per_settlement']} bytes each on average;"
        f" {d['visit_kinds']}), {results['partitions']} partitions. "
        f"Command: `{results['command']}`.",
        "",
        "| measure | value | notes |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
    ]
    if errors:
        lines.append(f"\n**Worker agent crashes during the run:** {errors} (see the worker logs;"
                     " figures measured with them).")
    short = {**tp.get("end_offset_short_by", {}), **two.get("end_offset_short_by", {})}
    if short:
        lines.append(f"\n**Broker end offsets short:** the group committed past "
                     f"ListOffsets(latest) on {short} (messages; BROKER.md gap 2).")
    short_logs = pipe["state"].get("end_offset_short_by")
    if short_logs:
        lines.append(f"\n**Records past ListOffsets(latest)** when reading the app's topics "
                     f"back: {short_logs} (changelogs here are what table recovery trusts).")
    if results.get("smoke"):
        lines.insert(0, "**Smoke size: proves the benchmark runs; the figures mean nothing.**\n")
    return "\n".join(lines) + "\n"
