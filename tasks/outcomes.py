"""Outcome tasks: measure fee changes whose evaluation window has closed, and store them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from prefect import task

from engine.fees import measure_fee_changes
from warehouse import db


@task(name="measure-fee-outcomes", retries=2, retry_delay_seconds=2)
def measure_fee_outcomes(warehouse_path: Path, node_id: str, now: datetime) -> tuple[int, int]:
    """Returns (measured, insufficient_data) counts for this node."""
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
            "control_scids": ",".join(o.control_scids),
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
