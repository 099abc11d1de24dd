"""The advisor's fee estimate scored on every fee change the fees loop applied (migration 010)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path

import polars as pl
from prefect import task

from engine.advisor.backtest import score_fee_change
from models.advisor import AdvisorConfig
from models.settings import Settings
from tasks.advisor import read_channel_inputs
from warehouse import db

BACKTEST_DAYS = 30  # how far back a first run scores fee changes made before it existed


@task(name="backtest-advisor-fees", retries=2, retry_delay_seconds=2)
def backtest_fee_changes(
    warehouse_path: Path, node_id: str, settings: Settings, config: AdvisorConfig, now: datetime
) -> int:
    """Score the advisor's fee estimate on each applied fee change of the last BACKTEST_DAYS not
    scored yet, from the warehouse as it stood at the change (engine.advisor.backtest)."""
    with db.writer(warehouse_path, who="advisor backtest") as con:
        changes = db.fetch_all(
            con,
            "advisor.unscored_fee_changes",
            node_id=node_id,
            since=now - timedelta(days=BACKTEST_DAYS),
            until=now,
        )
        rows = []
        for changed_at, group in groupby(changes, key=lambda c: c["changed_at"]):
            inputs = read_channel_inputs(con, node_id, settings, config, changed_at)
            for change in group:
                scored = score_fee_change(inputs, change, config)
                rows.append(
                    {
                        "change_id": scored.change_id,
                        "node_id": node_id,
                        "scid": change["scid"],
                        "changed_at": changed_at,
                        "old_fee_ppm": change["old_fee_ppm"],
                        "new_fee_ppm": change["new_fee_ppm"],
                        "raw_estimate_msat": scored.raw_estimate_msat,
                        "estimate_reason": scored.estimate_reason,
                        "computed_at": now,
                    }
                )
        if rows:
            db.stage(con, pl.DataFrame(rows, infer_schema_length=None), key=["change_id"])
            db.run(con, "advisor.insert_backtests")
    return len(rows)
