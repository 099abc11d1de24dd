"""fees: decide a fee for every channel of every node, record it, apply it (unless dry-run)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from prefect import flow, task

from engine.fees.plan import FeeInputs, plan_fees
from flows.common import start_loop
from flows.hooks import LOOP_HOOKS
from models.fees import FeeDecision
from models.settings import FeeConfig
from tasks.fees import (
    apply_fee_changes,
    load_fee_inputs,
    reconcile_fee_changes,
    record_fee_decisions,
)
from tasks.ledger import heartbeat_start

LOOP = "fees"


@task(name="decide-fees")
def decide_fees(inputs: FeeInputs, config: FeeConfig, now: datetime) -> list[FeeDecision]:
    rng = random.Random(f"{inputs.node_id}:{int(now.timestamp())}")
    return plan_fees(inputs, config, now, rng)


@flow(name="fees", **LOOP_HOOKS)
def fees(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    run = start_loop(LOOP, config_path, now)
    settings, at, wh = run.settings, run.at, run.settings.warehouse_path
    for node in settings.nodes:
        heartbeat_start(wh, run.run_id, LOOP, node.name, at)
        node_id = run.node_id(node)
        error, decisions, results = None, [], {}
        if node_id is None:
            error = run.never_collected(node)
        else:
            settled = reconcile_fee_changes(wh, node, settings.rpc, node_id, return_state=True)
            loaded = settled
            if not settled.is_failed():
                loaded = load_fee_inputs(wh, node_id, at, return_state=True)
            if loaded.is_failed():
                error = str(loaded.result(raise_on_failure=False))
            else:
                decisions = decide_fees(loaded.result(), settings.fees, at)
                change_ids = record_fee_decisions(wh, run.run_id, decisions, settings.dry_run)
                if change_ids:
                    results = apply_fee_changes(wh, node, settings.rpc, decisions, change_ids)
                failed = [f"{s}: {r}" for s, r in results.items() if r != "applied"]
                if failed:
                    error = f"node {node.name}: setchannel failed for " + "; ".join(failed)
        run.finish_node(
            node,
            error,
            decisions=len(decisions),
            rows_written=len(decisions),
            detail={"decisions": len(decisions), "applied": len(results), "changes": results},
        )
    return run.end()
