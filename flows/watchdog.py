"""watchdog: fail loudly when any loop has stopped succeeding, from the warehouse's heartbeats.

Prefect's staleness automations see only what Prefect saw; this flow reads the heartbeats every
loop writes, so a loop that "completes" without doing its work, or a Prefect that was stopped for
a day, shows up at the next check as alert rows and a failed run (which Prefect alerting reports).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from engine.watchdog import find_stale_loops, plan_alerts, summary_message
from flows.common import LoopFailed, current_run_id, loop_settings, resolve_now
from models.orchestration import orchestration_of
from tasks.ledger import FLEET_WIDE, heartbeat_finish, heartbeat_start
from tasks.watchdog import raise_stale_alerts, read_loop_freshness, resolve_stale_alerts

LOOP = "watchdog"


@flow(name="watchdog")
def watchdog(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    # Read before this run's own heartbeat, so the previous watchdog run is what gets judged.
    rows, first_at, open_alerts = read_loop_freshness(wh)
    heartbeat_start(wh, run_id, LOOP, FLEET_WIDE, at)
    stale = find_stale_loops(
        rows,
        orchestration_of(settings),
        at,
        first_heartbeat_at=first_at,
        nodes=[n.name for n in settings.nodes],
    )
    new, fresh_again = plan_alerts(stale, open_alerts)
    alert_ids = raise_stale_alerts(wh, new, at)
    resolved = resolve_stale_alerts(wh, fresh_again, at)
    heartbeat_finish(
        wh,
        run_id,
        LOOP,
        FLEET_WIDE,
        at,
        ok=True,  # the check itself worked; what it found is in the alerts and the run state
        decisions=len(stale),
        rows_written=len(alert_ids) + resolved,
        detail={"stale": [s.describe() for s in stale], "resolved": resolved},
    )
    if stale:
        raise LoopFailed(summary_message(stale))
    return {"stale": [], "checked": sorted({r.loop for r in rows}), "resolved": resolved}
