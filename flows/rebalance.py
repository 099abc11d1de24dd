"""rebalance: reconcile what earlier runs left, plan EV-gated pulls in budget, start them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from flows.common import LoopFailed, current_run_id, resolve_now
from models.settings import load_settings
from tasks.fees import known_node_ids
from tasks.ledger import heartbeat_finish, heartbeat_start, raise_alert
from tasks.rebalance import plan_and_reserve, refresh_ledger
from tasks.rebalance_jobs import reconcile_jobs, start_jobs

LOOP = "rebalance"


@flow(name="rebalance")
def rebalance(
    config_path: str | None = None, now: datetime | float | None = None
) -> dict[str, Any]:
    settings = load_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    summary: dict[str, Any] = {}
    failures: list[str] = []
    node_ids = known_node_ids(wh)
    for node in settings.nodes:
        heartbeat_start(wh, run_id, LOOP, node.name, at)
        node_id = node.node_id or node_ids.get(node.name)
        error: str | None = None
        info: dict[str, Any] = {"proposals": 0, "skips": 0}
        if node_id is None:
            error = f"node {node.name} has never been collected; run collect first"
        else:
            # Reconcile first: a crashed run's reservations and jobs are dealt with before
            # any new money is reserved (skipped in dry-run: nothing was started).
            if not settings.dry_run:
                rec = reconcile_jobs(wh, node, settings.rpc, node_id, at, return_state=True)
                if rec.is_failed():
                    error = f"node {node.name}: reconcile: {rec.result(raise_on_failure=False)}"
                else:
                    info["reconcile"] = rec.result()
            if error is None:
                planned = plan_and_reserve(wh, node_id, settings, at, run_id, return_state=True)
                if planned.is_failed():
                    error = f"node {node.name}: {planned.result(raise_on_failure=False)}"
                else:
                    proposals, skips = planned.result()
                    info.update(proposals=len(proposals), skips=len(skips))
                    if proposals:
                        info["started"] = start_jobs(wh, node, settings.rpc, proposals, at)
            info["ledger"] = refresh_ledger(wh, node_id, settings, at)
        if error:
            failures.append(error)
            raise_alert(
                wh,
                loop=LOOP,
                kind="rebalance_failed",
                severity="warning",
                message=error,
                raised_at=at,
                node=node.name,
            )
        decisions = info["proposals"] + info["skips"]
        heartbeat_finish(
            wh,
            run_id,
            LOOP,
            node.name,
            at,
            ok=error is None,
            decisions=decisions,
            rows_written=decisions,
            detail={**info, "error": error},
        )
        summary[node.name] = {**info, "error": error}
    if failures:
        raise LoopFailed(" | ".join(failures))
    return summary
