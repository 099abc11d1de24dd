"""Outcome task for the actions without a table of their own: opens, closes, external changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
from prefect import task

from engine.books.outcomes import OUTCOME_SCHEMA, close_outcome, external_outcome, open_outcome
from warehouse import db


@task(name="measure-action-outcomes", retries=2, retry_delay_seconds=2)
def measure_action_outcomes(
    warehouse_path: Path, node_id: str, now: datetime, decision_horizon_days: int
) -> tuple[int, int]:
    """Returns (measured, insufficient_data): one row per action and horizon once it has passed."""
    with db.writer(warehouse_path, who="outcomes read") as con:
        opens = db.fetch_all(con, "books.opens_due", node_id=node_id, now=now)
        closes = db.fetch_all(con, "books.closes_due", node_id=node_id, now=now)
        externals = db.fetch_all(con, "books.externals_due", node_id=node_id, now=now)
        if not (opens or closes or externals):
            return 0, 0
        accounts = db.fetch_frame(con, "books.channel_accounts_seen", node_id=node_id)
        ledger = db.fetch_frame(con, "books.channel_ledger", node_id=node_id)
    rows = (
        [open_outcome(r, accounts, ledger, now, decision_horizon_days) for r in opens]
        + [close_outcome(r, accounts, ledger, now, decision_horizon_days) for r in closes]
        + [external_outcome(r, accounts, ledger, now) for r in externals]
    )
    with db.writer(warehouse_path, who="outcomes write") as con:
        db.stage(
            con,
            pl.DataFrame(rows, schema=OUTCOME_SCHEMA),
            ["action_type", "action_id", "horizon_days"],
        )
        db.run(con, "books.insert_action_outcomes")
    measured = sum(1 for r in rows if r["status"] == "measured")
    return measured, len(rows) - measured
