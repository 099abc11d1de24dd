"""The max-HTLC step: read the node's channels, decide (engine.htlcmax), record, setchannel.

Every decision that changes the posted value gets an `htlcmax_changes` row before setchannel
is called (`pending`, or `dry_run` when nothing is called), completed once setchannel answered;
a row a crashed run left `pending` is closed from the next snapshot (applied if the posted
value is the new one, failed otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.htlcmax import decide_htlcmax
from models.htlcmax import HtlcmaxChannel, HtlcmaxDecision
from models.settings import HtlcmaxConfig, NodeConfig, RpcConfig
from tasks.gateway import NodeError, NodeGateway
from warehouse import db

STALE_SNAPSHOT_S = 6 * 3600


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _channel(row: dict[str, Any]) -> HtlcmaxChannel:
    return HtlcmaxChannel(
        scid=row["scid"],
        peer_id=row["peer_id"],
        is_fleet=bool(row["is_fleet"]),
        usable=bool(row["usable"]),
        capacity_msat=int(row["capacity_msat"]),
        local_msat=int(row["local_msat"]),
        spendable_msat=row["spendable_msat"],
        posted_htlcmax_msat=row["posted_htlcmax_msat"],
        passive=bool(row["passive"]),
        last_change_at=_utc(row["last_change_at"]),
    )


def _close_stale(con: Any, node_id: str, now: datetime) -> int:
    rows = db.fetch_all(con, "htlcmax.stale_pending", node_id=node_id, now=now)
    for r in rows:
        took = r["posted_htlcmax_msat"] == r["new_htlcmax_msat"]
        db.run(
            con,
            "htlcmax.finish_change",
            change_id=r["change_id"],
            status="applied" if took else "failed",
            error=None if took else "run ended before setchannel answered; not in the snapshot",
        )
    return len(rows)


@task(name="adjust-htlcmax", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def adjust_htlcmax(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    node_id: str,
    config: HtlcmaxConfig,
    now: datetime,
    run_id: str,
    dry_run: bool,
    incoming: dict[str, int] | None = None,
) -> dict[str, int]:
    """Post an htlc_maximum_msat that fits what each channel can send; `incoming` (scid → msat)
    what the pulls this run just started are about to bring (a refilled sink should not sit
    behind a narrow max-HTLC until the next run)."""
    counts = {"decided": 0, "changes": 0, "applied": 0, "failed": 0, "closed_stale": 0}
    with db.writer(warehouse_path, who="htlcmax read") as con:
        counts["closed_stale"] = _close_stale(con, node_id, now)
        rows = db.fetch_all(con, "htlcmax.channels", node_id=node_id, now=now)
    if not rows:
        return counts
    age_s = (now - rows[0]["taken_at"].astimezone(UTC)).total_seconds()
    if age_s > STALE_SNAPSHOT_S:
        raise RuntimeError(
            f"latest snapshot of node {node_id} is {age_s / 3600:.1f} h old; max-HTLC decides "
            f"only on state younger than {STALE_SNAPSHOT_S // 3600} h (is collect running?)"
        )
    decisions = decide_htlcmax([_channel(r) for r in rows], config, now, incoming=incoming)
    counts["decided"] = len(decisions)
    changes = [d for d in decisions if d.apply]
    counts["changes"] = len(changes)
    if not changes:
        return counts
    ids = {d.scid: f"{node_id[:16]}:{d.scid}:{now:%Y%m%dT%H%M%SZ}" for d in changes}
    with db.writer(warehouse_path, who="htlcmax record") as con:
        db.stage(
            con,
            pl.DataFrame(
                [_row(d, ids[d.scid], run_id, node_id, now, dry_run) for d in changes],
                infer_schema_length=None,
            ),
        )
        db.run(con, "htlcmax.insert_changes")
    if dry_run:
        return counts
    gw = NodeGateway(node, rpc)
    for d in changes:
        status, error = "applied", None
        try:
            gw.call("setchannel", {"id": d.scid, "htlcmax": d.new_htlcmax_msat})
        except NodeError as exc:
            status, error = "failed", str(exc)
        with db.writer(warehouse_path, who="htlcmax apply") as con:
            db.run(con, "htlcmax.finish_change", status=status, error=error, change_id=ids[d.scid])
        counts[status] += 1
    return counts


def _row(
    d: HtlcmaxDecision, change_id: str, run_id: str, node_id: str, now: datetime, dry_run: bool
) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "run_id": run_id,
        "node_id": node_id,
        "scid": d.scid,
        "peer_id": d.peer_id,
        "decided_at": now,
        "old_htlcmax_msat": d.old_htlcmax_msat,
        "new_htlcmax_msat": d.new_htlcmax_msat,
        "spendable_msat": d.spendable_msat,
        "capacity_msat": d.capacity_msat,
        "reason": d.reason.value,
        "detail": d.detail,
        "status": "dry_run" if dry_run else "pending",
        "error": None,
    }
