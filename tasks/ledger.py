"""Heartbeats and alerts: every loop's proof of life and its way to say something is wrong."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task

from warehouse import db

FLEET_WIDE = "*"


@task(name="heartbeat-start", retries=2, retry_delay_seconds=1)
def heartbeat_start(
    warehouse_path: Path, run_id: str, loop: str, node: str, started_at: datetime
) -> None:
    db.note_run_start(run_id)  # a publish at the run's end weighs its cost against the run
    with db.writer(warehouse_path, who=f"{loop} heartbeat") as con:
        db.run(
            con,
            "common.heartbeat_start",
            run_id=run_id,
            loop=loop,
            node=node,
            started_at=started_at,
        )


@task(name="heartbeat-finish", retries=2, retry_delay_seconds=1)
def heartbeat_finish(
    warehouse_path: Path,
    run_id: str,
    loop: str,
    node: str,
    finished_at: datetime,
    *,
    ok: bool,
    rows_written: int = 0,
    decisions: int = 0,
    detail: dict[str, Any] | str | None = None,
) -> None:
    text = detail if isinstance(detail, str) or detail is None else json.dumps(detail, default=str)
    # A finished cycle is the loop's last write: the read copy is published when the writer
    # hands the file back (warehouse/readcopy.py), so every loop publishes, none opens the copy.
    with db.writer(warehouse_path, who=f"{loop} heartbeat", publish_for=(loop, run_id)) as con:
        db.run(
            con,
            "common.heartbeat_finish",
            run_id=run_id,
            loop=loop,
            node=node,
            finished_at=finished_at,
            status="ok" if ok else "failed",
            rows_written=rows_written,
            decisions=decisions,
            detail=text,
        )


@task(name="raise-alert", retries=2, retry_delay_seconds=1)
def raise_alert(
    warehouse_path: Path,
    *,
    loop: str,
    kind: str,
    severity: str,
    message: str,
    raised_at: datetime,
    node: str | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    alert_id = uuid.uuid4().hex
    with db.writer(warehouse_path, who=f"{loop} alert") as con:
        db.run(
            con,
            "common.insert_alert",
            alert_id=alert_id,
            raised_at=raised_at,
            loop=loop,
            node=node,
            kind=kind,
            severity=severity,
            message=message,
            details=json.dumps(details or {}, default=str),
        )
    return alert_id
