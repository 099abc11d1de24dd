"""Outcome tasks: measure fee changes whose evaluation window has closed, and store them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from prefect import task

from engine.fees import measure_fee_changes
from models.fees import WindowTotals
from warehouse import db


@task(name="measure-fee-outcomes", retries=2, retry_delay_seconds=2)
def measure_fee_outcomes(warehouse_path: Path, node_id: str, now: datetime) -> tuple[int, int]:
    """Returns (measured, insufficient_data) counts for this node.

    A measured row carries its method, trend and the traffic it compared (migration 009)."""
    with db.writer(warehouse_path, who="outcomes read") as con:
        due = db.fetch_frame(con, "fees.unmeasured_changes", node_id=node_id, now=now)
        if due.is_empty():
            return 0, 0
        window_s = int(due["evaluation_window_s"].max())  # type: ignore[arg-type]
        since = due["changed_at"].min() - timedelta(seconds=window_s)  # type: ignore[operator]
        forwards = db.fetch_frame(con, "fees.forwards", node_id=node_id, since=since)
        log = db.fetch_frame(con, "fees.all_changes", node_id=node_id)
        scids = db.fetch_frame(con, "fees.node_scids", node_id=node_id)["scid"].to_list()
    due_ids = set(due["change_id"].to_list())
    outcomes = [
        o
        for o in measure_fee_changes(log, forwards, window_s=window_s, now=now, channel_scids=scids)
        if o.change_id in due_ids and o.status != "pending"
    ]
    rows = [
        {
            "change_id": o.change_id,
            "window_s": o.window_s,
            "node_id": node_id,
            "scid": o.scid,
            "changed_at": o.changed_at,
            "measured_at": now,
            "status": str(o.status),
            "detail": o.detail,
            "method": None if o.method is None else str(o.method),
            "trend": o.trend,
            "window_start": o.window_start,
            "window_end": o.window_end,
            "treated_before_forwards": _forwards(o.treated_before),
            "treated_after_forwards": _forwards(o.treated_after),
            "treated_before_revenue_msat": _revenue(o.treated_before),
            "treated_after_revenue_msat": _revenue(o.treated_after),
            "control_scids": ",".join(o.control_scids),
            "control_before_revenue_msat": _revenue(o.control_before),
            "control_after_revenue_msat": _revenue(o.control_after),
            "did_revenue_msat_per_h": o.did_revenue_msat_per_h,
            "did_volume_msat_per_h": o.did_volume_msat_per_h,
            "did_forwards_per_h": o.did_forwards_per_h,
            "actual_benefit_msat": o.actual_benefit_msat,
            "predicted_benefit_msat": o.predicted_benefit_msat,
            "prediction_error_msat": o.prediction_error_msat,
        }
        for o in outcomes
    ]
    if rows:
        with db.writer(warehouse_path, who="outcomes write") as con:
            db.stage(con, pl.DataFrame(rows, infer_schema_length=None), ["change_id", "window_s"])
            db.run(con, "fees.insert_outcomes")
    measured = sum(1 for o in outcomes if str(o.status) == "measured")
    return measured, len(outcomes) - measured


def _forwards(totals: WindowTotals | None) -> int | None:
    return None if totals is None else totals.forwards


def _revenue(totals: WindowTotals | None) -> int | None:
    return None if totals is None else totals.revenue_msat
