"""`hiveops policy rebalance set|get|list|delete|resume`: per-peer and per-channel rebalance
modes (auto, never, source-only, sink-only), and an operator's reset of a suspended channel."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import polars as pl
from pydantic import ValidationError

from models.rebalance_policy import RebalanceMode, RebalancePolicy
from models.settings import load_settings
from warehouse import db


def add_parser(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rebalance = psub.add_parser("rebalance", help="rebalance modes per peer or channel")
    rsub = rebalance.add_subparsers(dest="rebalance_command", required=True)
    for name in ("set", "get", "delete"):
        cmd = rsub.add_parser(name)
        scope = cmd.add_mutually_exclusive_group(required=True)
        scope.add_argument("--peer", help="the peer's node id")
        scope.add_argument("--scid", help="one channel")
        cmd.add_argument("--config")
        if name == "set":
            cmd.add_argument("--mode", required=True, choices=[m.value for m in RebalanceMode])
            cmd.add_argument("--note", default="")
        cmd.set_defaults(handler=run)
    listing = rsub.add_parser("list")
    listing.add_argument("--config")
    listing.set_defaults(handler=run)
    resume = rsub.add_parser(
        "resume", help="clear a suspended channel's breaker (after fixing the cause)"
    )
    resume.add_argument("--scid", required=True)
    resume.add_argument("--note", default="")
    resume.add_argument("--config")
    resume.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    wh = settings.warehouse_path
    command = args.rebalance_command
    now = datetime.now(UTC)
    if command == "list":
        with db.reader(wh) as con:
            print(db.fetch_frame(con, "rebalance.list_policies"))
        return 0
    if command == "resume":
        row = {"scid": args.scid, "resumed_at": now, "note": args.note}
        with db.writer(wh, who="rebalance resume") as con:
            db.stage(con, pl.DataFrame([row]))
            db.run(con, "rebalance.insert_resume")
        print(f"resumed {args.scid}: attempts before {now:%Y-%m-%d %H:%M:%S} UTC no longer count")
        return 0
    policy_id = f"scid:{args.scid}" if args.scid else f"peer:{args.peer}"
    if command == "get":
        with db.reader(wh) as con:
            frame = db.fetch_frame(con, "rebalance.list_policies")
        found = frame.filter(pl.col("policy_id") == policy_id)
        print(found if found.height else f"no rebalance policy for {policy_id} (auto)")
        return 0 if found.height else 1
    if command == "delete":
        with db.writer(wh, who="rebalance policy delete") as con:
            db.run(con, "rebalance.delete_policy", policy_id=policy_id)
        print(f"deleted {policy_id} (auto)")
        return 0
    try:
        policy = RebalancePolicy(
            mode=args.mode, peer_id=args.peer, scid=args.scid, created_at=now, note=args.note
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        print(f"hiveops policy rebalance: {reasons}", file=sys.stderr)
        return 2
    row = {"policy_id": policy.policy_id, **policy.model_dump(mode="python")}
    row["mode"] = policy.mode.value
    with db.writer(wh, who="rebalance policy set") as con:
        db.stage(con, pl.DataFrame([row], infer_schema_length=None))
        db.run(con, "rebalance.upsert_policy")
    print(f"set {policy.policy_id}: rebalance {policy.mode.value}")
    return 0
