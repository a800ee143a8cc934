"""The ``fund-sentinel`` command (SPEC §10). Each subcommand is a thin call into a module."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from .settings import Settings, SettingsError, from_env, validate

log = logging.getLogger("fund_sentinel")


def _broker_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--broker", default=os.environ.get("FUND_SENTINEL_BROKER"),
                   help="broker URL, e.g. kafka://127.0.0.1:9092 (env FUND_SENTINEL_BROKER)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fund-sentinel", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="embedded broker + worker + synthetic feed + console")
    d.add_argument("--web-port", type=int, default=6066)
    d.add_argument("--rate", type=float, default=200.0, help="settlements per second fed")
    d.add_argument("--months", type=int, default=4)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    d.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    b = sub.add_parser("broker", help="embedded Kafka-protocol broker on 127.0.0.1")
    b.add_argument("--port", type=int, default=None, help="default: a free port")
    b.add_argument("--partitions", type=int, default=8)

    w = sub.add_parser("worker", help="one Faust worker")
    _broker_arg(w)
    w.add_argument("--web-port", type=int, default=None)
    w.add_argument("--rules", type=Path, default=None, help="rule-set TOML file")
    w.add_argument("--data-dir", type=Path, default=None)
    w.add_argument("--partitions", type=int, default=None)

    g = sub.add_parser("generate", help="synthetic settlements with labelled anomalies")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--months", type=int, default=4)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--scale", choices=("tiny", "small", "medium", "large"), default="small")
    g.add_argument("--start", default="2025-08", help="first month, YYYY-MM")

    r = sub.add_parser("replay", help="produce a JSONL file into the settlements topic")
    r.add_argument("file", type=Path)
    _broker_arg(r)
    r.add_argument("--rate", type=float, default=None, help="messages per second (default: max)")
    r.add_argument("--topic", default=None)

    a = sub.add_parser("alerts", help="print alerts")
    _broker_arg(a)
    a.add_argument("--follow", action="store_true")
    a.add_argument("--topic", default=None)
    a.add_argument("--json", action="store_true", help="raw JSON lines")

    c = sub.add_parser("check", help="POST a settlement to /v1/check")
    c.add_argument("file", type=Path)
    c.add_argument("--url", default="http://127.0.0.1:6066")
    return ap


def settings_for(args: argparse.Namespace, env: dict[str, str]) -> Settings:
    s = from_env(env)
    overrides = {}
    if getattr(args, "broker", None):
        overrides["broker"] = args.broker
    for name in ("web_port", "data_dir", "partitions"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    if getattr(args, "rules", None) is not None:
        overrides["rules_file"] = args.rules
    return validate(dataclasses.replace(s, **overrides))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_for(args, dict(os.environ))
    except SettingsError as exc:
        print(f"fund-sentinel: invalid setting: {exc}", file=sys.stderr)
        return 2
    from .logging_setup import configure

    configure(settings.log_level, settings.log_format)
    needs_broker = args.command in ("worker", "replay", "alerts")
    if needs_broker and not getattr(args, "broker", None) and "FUND_SENTINEL_BROKER" not in os.environ:
        print("fund-sentinel: --broker URL (or FUND_SENTINEL_BROKER) is required", file=sys.stderr)
        return 2
    from . import commands

    return int(getattr(commands, args.command)(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
