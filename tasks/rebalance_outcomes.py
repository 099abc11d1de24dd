"""Rebalance outcome task: what each finished rebalance earned back, against its prediction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from prefect import task

from engine.rebalance import measure_rebalance_outcome
from models.fees import OutcomeStatus
from warehouse import db


@task(name="measure-rebalance-outcomes", retries=2, retry_delay_seconds=2)
def measure_rebalance_outcomes(
    warehouse_path: Path, node_id: str, now: datetime
) -> tuple[int, int]:
    """Returns (measured, insufficient_data) for attempts that finished and are due.

    Failed attempts get their row at once (they moved nothing); successes once their horizon
    (the window the EV gate predicted over) has passed.
    """
    rows = []
    with db.writer(warehouse_path, who="outcomes read") as con:
        due = db.fetch_all(con, "rebalance.unmeasured_attempts", node_id=node_id, now=now)
        for a in due:
            finished_at = a["finished_at"].astimezone(UTC)
            window_s = int(a["horizon_s"])
            started_at = (a["started_at"] or a["finished_at"]).astimezone(UTC)
            before = db.fetch_all(
                con, "rebalance.local_before", node_id=node_id, scid=a["dest_scid"], at=started_at
            )
            forwards = db.fetch_frame(
                con,
                "rebalance.outcome_forwards",
                node_id=node_id,
                scid=a["dest_scid"],
                since=finished_at,
                until=finished_at + timedelta(seconds=window_s),
            )
            outcome = measure_rebalance_outcome(
                attempt_id=a["attempt_id"],
                dest_scid=a["dest_scid"],
                moved_msat=int(a["moved_msat"]),
                fee_paid_msat=int(a["fee_msat"]),
                finished_at=finished_at,
                forwards=forwards,
                window_s=window_s,
                now=now,
                predicted_benefit_msat=int(a["predicted_benefit_msat"]),
                local_before_msat=int(before[0]["local_msat"]) if before else None,
            )
            if outcome.status is OutcomeStatus.PENDING:
                continue
            rows.append(
                {
                    **outcome.model_dump(mode="python"),
                    "status": str(outcome.status),
                    "node_id": node_id,
                    "measured_at": now,
                }
            )
        if rows:
            db.stage(con, pl.DataFrame(rows, infer_schema_length=None), ["attempt_id", "window_s"])
            db.run(con, "rebalance.insert_outcomes")
    measured = sum(1 for r in rows if r["status"] == str(OutcomeStatus.MEASURED))
    return measured, len(rows) - measured
