"""Which loops have gone quiet: the check the audit had to do by hand after five silent days.

Pure functions over the `loop_freshness` rows. A loop is stale when its last successful heartbeat
is older than `stale_factor` x its interval. A loop with no heartbeat at all is stale once the
installation has been operating (first heartbeat of any loop) for longer than that window, so a
loop whose schedule was never installed is caught too, without alarms on a fresh warehouse. The
watchdog's own previous heartbeat is checked like any other loop: when it is old, the scheduler
(Prefect) itself was stopped, and the message says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from models.orchestration import LoopFreshness, OrchestrationConfig, StaleLoop

FLEET_WIDE = "*"
WATCHDOG = "watchdog"


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def find_stale_loops(
    rows: Iterable[LoopFreshness],
    config: OrchestrationConfig,
    now: datetime,
    *,
    first_heartbeat_at: datetime | None,
    nodes: Iterable[str] = (),
) -> list[StaleLoop]:
    """Stale (loop, node) pairs among the watched loops, oldest success first.

    `nodes` are the configured node names: rows of nodes no longer configured are ignored (the
    fleet-wide node `*` always counts). With no nodes given, every row counts.
    """
    now = _utc(now)
    known_nodes = set(nodes)
    by_loop: dict[str, list[LoopFreshness]] = {}
    for row in rows:
        if known_nodes and row.node != FLEET_WIDE and row.node not in known_nodes:
            continue
        by_loop.setdefault(row.loop, []).append(row)
    operating_s = int((now - _utc(first_heartbeat_at)).total_seconds()) if first_heartbeat_at else 0
    stale: list[StaleLoop] = []
    for loop in config.loops:
        interval_s = config.interval_s(loop)
        window_s = config.stale_after_s(loop)
        loop_rows = by_loop.get(loop, [])
        if not loop_rows:
            if first_heartbeat_at is not None and operating_s > window_s:
                stale.append(
                    _stale(loop, None, "never_ran", None, operating_s, interval_s, window_s)
                )
            continue
        for row in loop_rows:
            if row.last_ok_at is None:
                reason, age_s = "never_succeeded", operating_s
            else:
                reason, age_s = "stale", int((now - _utc(row.last_ok_at)).total_seconds())
            if age_s > window_s:
                stale.append(
                    _stale(loop, row.node, reason, row.last_ok_at, age_s, interval_s, window_s)
                )
    return sorted(stale, key=lambda s: (-s.age_s, s.loop, s.node or ""))


def _stale(
    loop: str,
    node: str | None,
    reason: str,
    last_ok_at: datetime | None,
    age_s: int,
    interval_s: int,
    window_s: int,
) -> StaleLoop:
    # Twice past its window (4x the interval by default) is no longer a hiccup.
    severity = "critical" if reason != "stale" or age_s > 2 * window_s else "warning"
    return StaleLoop(
        loop=loop,
        node=node,
        reason=reason,
        last_ok_at=_utc(last_ok_at) if last_ok_at else None,
        age_s=age_s,
        interval_s=interval_s,
        stale_after_s=window_s,
        severity=severity,
    )


def scheduler_was_down(stale: Iterable[StaleLoop]) -> bool:
    """The watchdog's own last success is past its window: nothing was scheduling runs."""
    return any(s.loop == WATCHDOG and s.reason == "stale" for s in stale)


def plan_alerts(
    stale: list[StaleLoop], open_alerts: dict[tuple[str, str], str]
) -> tuple[list[StaleLoop], list[str]]:
    """(stale loops needing a new alert row, ids of open stale alerts to resolve).

    One alert row per stale episode: a loop still stale keeps its open alert; a loop fresh again
    has its alert resolved. The flow run still fails on every check while anything is stale.
    """
    stale_keys = {s.key for s in stale}
    new = [s for s in stale if s.key not in open_alerts]
    resolved = [alert_id for key, alert_id in open_alerts.items() if key not in stale_keys]
    return new, resolved


def summary_message(stale: list[StaleLoop]) -> str:
    """One line for the failed run's state message (the webhook shows it)."""
    head = f"{len(stale)} stale loop(s): " + "; ".join(s.describe() for s in stale[:6])
    if len(stale) > 6:
        head += f"; and {len(stale) - 6} more"
    if scheduler_was_down(stale):
        head += (
            " -- the watchdog itself missed its window, so the scheduler (hiveops serve or the "
            "Prefect worker) was probably stopped"
        )
    return head
