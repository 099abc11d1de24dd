"""Watchdog tasks: read loop freshness from the warehouse, keep one alert row per stale episode."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import task

from models.orchestration import LoopFreshness, StaleLoop
from tasks.ledger import raise_alert
from warehouse import db

ALERT_KIND = "loop_stale"


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


@task(name="read-loop-freshness", retries=2, retry_delay_seconds=1)
def read_loop_freshness(
    warehouse_path: Path,
) -> tuple[list[LoopFreshness], datetime | None, dict[tuple[str, str], str]]:
    """(freshness rows, first heartbeat ever, open stale alerts by (loop, node))."""
    with db.writer(warehouse_path, who="watchdog read") as con:
        rows = [
            LoopFreshness(
                **{
                    **r,
                    "last_ok_at": _utc(r["last_ok_at"]),
                    "last_started_at": _utc(r["last_started_at"]),
                }
            )
            for r in db.fetch_all(con, "watchdog.freshness")
        ]
        first_at = _utc(db.fetch_one(con, "watchdog.first_heartbeat").get("first_at"))
        open_alerts = {
            (r["loop"], r["node"]): r["alert_id"]
            for r in db.fetch_all(con, "watchdog.open_stale_alerts")
        }
    return rows, first_at, open_alerts


def raise_stale_alerts(warehouse_path: Path, stale: list[StaleLoop], at: datetime) -> list[str]:
    """One alert row per newly stale loop (through the ledger, like every loop's alerts)."""
    return [
        raise_alert(
            warehouse_path,
            loop=s.loop,
            kind=ALERT_KIND,
            severity=s.severity,
            message=s.describe(),
            raised_at=at,
            node=s.node,
            details=json.loads(s.model_dump_json()),
        )
        for s in stale
    ]


@task(name="resolve-stale-alerts", retries=2, retry_delay_seconds=1)
def resolve_stale_alerts(warehouse_path: Path, alert_ids: list[str], at: datetime) -> int:
    """Close the episodes of loops that are fresh again."""
    if not alert_ids:
        return 0
    with db.writer(warehouse_path, who="watchdog resolve") as con:
        for alert_id in alert_ids:
            db.run(con, "watchdog.resolve_alert", alert_id=alert_id, resolved_at=at)
    return len(alert_ids)
