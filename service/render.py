"""Human-readable one-line renderings of alerts and decisions (CLI and demo console)."""

from __future__ import annotations


def alert_line(a: dict, mask_patients: bool = False) -> str:
    """One line per alert; ``mask_patients`` hides patient ids (for consoles that act as
    logs, like the demo's)."""
    ent = dict(a.get("entity") or {})
    if mask_patients and ent.get("kind") == "patient":
        ent["id"] = "(patient)"
    where = ", ".join(str(x) for x in (ent.get("institution_id"), ent.get("region")) if x)
    head = (f"{a.get('status', '?').upper():8} {a.get('level', '?').upper():6} "
            f"{a.get('rule', '?'):26} {ent.get('kind', '?')} {ent.get('id', '?')}"
            + (f" ({where})" if where else ""))
    if a.get("rule", "").startswith("peer."):
        ev = a.get("evidence") or {}
        p = ev.get("p_value")
        return (f"{head} {a.get('visit_kind')} {a.get('period')}: {a.get('observed')} vs peers "
                f"{a.get('peer_mean')} (x{a.get('ratio')}, n={a.get('n')}, "
                f"{a.get('consecutive_months')} mo" + (f", p={p:.3g}" if p is not None else "")
                + ")")
    ev = a.get("evidence") or {}
    msg = ev.get("message") or ""
    return f"{head} {a.get('period', '')} {msg}".rstrip()


def decision_line(d: dict) -> str:
    hits = ", ".join(h.get("rule", "?") for h in d.get("hits", []))
    return f"{d.get('decision', '?').upper():5} {d.get('settlement_id', '?')} {hits}".rstrip()
