"""watchdog: fail loudly when any loop has stopped succeeding, from the warehouse's heartbeats.

Prefect's staleness automations see only what Prefect saw; this flow reads the heartbeats every
loop writes, so a loop that "completes" without doing its work, or a Prefect that was stopped for
a day, shows up at the next check as alert rows and a failed run (which Prefect alerting reports).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from engine.notices import watchdog_notices
from engine.watchdog import find_stale_loops, plan_alerts, summary_message
from flows.common import FindingsFired, current_run_id, loop_settings, resolve_now
from flows.hooks import LOOP_HOOKS
from models.orchestration import orchestration_of
from tasks.deadman import ping_deadman
from tasks.ledger import FLEET_WIDE, heartbeat_finish, heartbeat_start
from tasks.notices import emit_notices
from tasks.watchdog import raise_stale_alerts, read_loop_freshness, resolve_stale_alerts

LOOP = "watchdog"


@flow(name="watchdog", **LOOP_HOOKS)
def watchdog(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    # Read before this run's own heartbeat, so the previous watchdog run is what gets judged.
    rows, first_at, open_alerts = read_loop_freshness(wh)
    heartbeat_start(wh, run_id, LOOP, FLEET_WIDE, at)
    orchestration = orchestration_of(settings)
    stale = find_stale_loops(
        rows,
        orchestration,
        at,
        first_heartbeat_at=first_at,
        nodes=[n.name for n in settings.nodes],
    )
    new, fresh_again = plan_alerts(stale, open_alerts)
    alert_ids = raise_stale_alerts(wh, new, at)
    resolved = resolve_stale_alerts(wh, fresh_again, at)
    keys_of = {alert_id: key for key, alert_id in open_alerts.items()}
    cleared = [keys_of[alert_id] for alert_id in fresh_again if alert_id in keys_of]
    notified = emit_notices(watchdog_notices(new, cleared))
    heartbeat_finish(
        wh,
        run_id,
        LOOP,
        FLEET_WIDE,
        at,
        ok=True,  # the check itself worked; what it found is in the alerts and the run state
        decisions=len(stale),
        rows_written=len(alert_ids) + resolved,
        detail={"stale": [s.describe() for s in stale], "resolved": resolved, "notices": notified},
    )
    # The dead man's switch: a ping after every check (`/fail` when something is stale), so a
    # stopped host, server or scheduler is noticed by a service outside hiveops.
    message = summary_message(stale) if stale else ""
    pinged = ping_deadman(orchestration.deadman_url, ok=not stale, body=message)
    if stale:
        raise FindingsFired(message)
    return {
        "stale": [],
        "checked": sorted({r.loop for r in rows}),
        "resolved": resolved,
        "notices": notified,
        "deadman_ping": pinged,
    }
