"""`hiveops policy set|get|list|delete`: per-peer and per-channel fee policies (rebalance
modes: `hiveops policy rebalance ...`, hiveops.rebalancepolicycli)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
from pydantic import ValidationError

from models.fees import FeePolicy
from models.settings import load_settings
from warehouse import db


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = sub.add_parser("policy", help="fee policies per peer or channel")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    for name in ("set", "get", "delete"):
        cmd = psub.add_parser(name)
        scope = cmd.add_mutually_exclusive_group(required=True)
        scope.add_argument("--peer", help="the peer's node id")
        scope.add_argument("--scid", help="one channel")
        cmd.add_argument("--config")
        if name == "set":
            cmd.add_argument(
                "--kind", required=True, choices=["dynamic", "static", "passive", "fleet"]
            )
            cmd.add_argument("--base-msat", type=int)
            cmd.add_argument("--ppm", type=int)
            cmd.add_argument("--min-ppm", type=int)
            cmd.add_argument("--max-ppm", type=int)
            cmd.add_argument("--expires-in-h", type=float)
            cmd.add_argument("--note", default="")
        cmd.set_defaults(handler=run)
    listing = psub.add_parser("list")
    listing.add_argument("--config")
    listing.set_defaults(handler=run)
    from hiveops.rebalancepolicycli import add_parser as add_rebalance_parser

    add_rebalance_parser(psub)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    wh = settings.warehouse_path
    command = args.policy_command
    if command == "list":
        with db.reader(wh) as con:
            print(db.fetch_frame(con, "fees.list_policies"))
        return 0
    policy_id = f"scid:{args.scid}" if args.scid else f"peer:{args.peer}"
    if command == "get":
        with db.reader(wh) as con:
            frame = db.fetch_frame(con, "fees.list_policies")
        found = frame.filter(pl.col("policy_id") == policy_id)
        print(found if found.height else f"no policy for {policy_id}")
        return 0 if found.height else 1
    if command == "delete":
        with db.writer(wh, who="policy delete") as con:
            db.run(con, "fees.delete_policy", policy_id=policy_id)
        print(f"deleted {policy_id}")
        return 0
    now = datetime.now(UTC)
    try:
        policy = FeePolicy(
            kind=args.kind,
            peer_id=args.peer,
            scid=args.scid,
            base_fee_msat=args.base_msat,
            fee_ppm=args.ppm,
            min_fee_ppm=args.min_ppm,
            max_fee_ppm=args.max_ppm,
            expires_at=now + timedelta(hours=args.expires_in_h) if args.expires_in_h else None,
            created_at=now,
            note=args.note,
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        print(f"hiveops policy: {reasons}", file=sys.stderr)
        return 2
    row = {"policy_id": policy_id, **policy.model_dump(mode="python")}
    row["kind"] = str(policy.kind)
    with db.writer(wh, who="policy set") as con:
        db.stage(con, pl.DataFrame([row], infer_schema_length=None))
        db.run(con, "fees.upsert_policy")
    print(f"set {policy_id}: {policy.kind}" + (f" {policy.fee_ppm} ppm" if policy.fee_ppm else ""))
    return 0
