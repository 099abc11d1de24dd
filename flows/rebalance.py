"""rebalance: reconcile what earlier runs left, plan EV-gated pulls in budget, start them;
then post a max-HTLC that fits each channel's balance (tasks.htlcmax)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from flows.common import start_loop
from flows.hooks import LOOP_HOOKS
from tasks.htlcmax import adjust_htlcmax
from tasks.ledger import heartbeat_start
from tasks.rebalance import plan_and_reserve, read_gossip, refresh_ledger
from tasks.rebalance_jobs import reconcile_jobs, start_jobs

LOOP = "rebalance"


@flow(name="rebalance", **LOOP_HOOKS)
def rebalance(
    config_path: str | None = None, now: datetime | float | None = None
) -> dict[str, Any]:
    run = start_loop(LOOP, config_path, now)
    settings, at, wh = run.settings, run.at, run.settings.warehouse_path
    for node in settings.nodes:
        heartbeat_start(wh, run.run_id, LOOP, node.name, at)
        node_id = run.node_id(node)
        error: str | None = None
        info: dict[str, Any] = {"proposals": 0, "skips": 0}
        incoming: dict[str, int] = {}  # dest scid -> msat a job started this run will bring
        if node_id is None:
            error = run.never_collected(node)
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
                # Routes priced from gossip first; without it sling alone finds out (logged).
                read = read_gossip(node, settings.rpc, return_state=True)
                gossip = None if read.is_failed() else read.result()
                info["route_check"] = (
                    f"{len(gossip)} gossip half-channels"
                    if gossip is not None
                    else f"off: listchannels failed: {read.result(raise_on_failure=False)}"
                )
                planned = plan_and_reserve(
                    wh, node_id, settings, at, run.run_id, gossip, return_state=True
                )
                if planned.is_failed():
                    error = f"node {node.name}: {planned.result(raise_on_failure=False)}"
                else:
                    proposals, skips = planned.result()
                    info.update(proposals=len(proposals), skips=len(skips))
                    if proposals:
                        started = start_jobs(wh, node, settings.rpc, proposals, at)
                        info["started"] = started
                        incoming = {
                            p.dest_scid: p.amount_msat
                            for p in proposals
                            if started.get(p.dest_scid) == "started"
                        }
                        unknown = [
                            f"{scid}: {r}" for scid, r in started.items() if r.startswith("unknown")
                        ]
                        if unknown:
                            error = f"node {node.name}: sling-once " + "; ".join(unknown)
            info["ledger"] = refresh_ledger(wh, node_id, settings, at)
            if settings.htlcmax.enabled and error is None:
                step = adjust_htlcmax(
                    wh,
                    node,
                    settings.rpc,
                    node_id,
                    settings.htlcmax,
                    at,
                    run.run_id,
                    settings.dry_run,
                    incoming,
                    return_state=True,
                )
                if step.is_failed():
                    error = f"node {node.name}: max-HTLC: {step.result(raise_on_failure=False)}"
                else:
                    info["htlcmax"] = step.result()
        decisions = info["proposals"] + info["skips"]
        run.finish_node(node, error, decisions=decisions, rows_written=decisions, detail=info)
    return run.end()
