"""fees: decide a fee for every channel of every node, record it, apply it (unless dry-run)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from prefect import flow, task

from engine.fees.plan import FeeInputs, plan_fees
from flows.common import LoopFailed, current_run_id, resolve_now
from models.fees import FeeDecision
from models.settings import FeeConfig, load_settings
from tasks.fees import apply_fee_changes, known_node_ids, load_fee_inputs, record_fee_decisions
from tasks.ledger import heartbeat_finish, heartbeat_start, raise_alert

LOOP = "fees"


@task(name="decide-fees")
def decide_fees(inputs: FeeInputs, config: FeeConfig, now: datetime) -> list[FeeDecision]:
    rng = random.Random(f"{inputs.node_id}:{int(now.timestamp())}")
    return plan_fees(inputs, config, now, rng)


@flow(name="fees")
def fees(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
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
        error, decisions, results = None, [], {}
        if node_id is None:
            error = f"node {node.name} has never been collected; run collect first"
        else:
            loaded = load_fee_inputs(wh, node_id, at, return_state=True)
            if loaded.is_failed():
                error = str(loaded.result(raise_on_failure=False))
            else:
                decisions = decide_fees(loaded.result(), settings.fees, at)
                change_ids = record_fee_decisions(wh, run_id, decisions, settings.dry_run)
                if change_ids:
                    results = apply_fee_changes(wh, node, settings.rpc, decisions, change_ids)
                failed = [f"{s}: {r}" for s, r in results.items() if r != "applied"]
                if failed:
                    error = f"node {node.name}: setchannel failed for " + "; ".join(failed)
        if error:
            failures.append(error)
            raise_alert(
                wh,
                loop=LOOP,
                kind="fees_failed",
                severity="warning",
                message=error,
                raised_at=at,
                node=node.name,
            )
        heartbeat_finish(
            wh,
            run_id,
            LOOP,
            node.name,
            at,
            ok=error is None,
            decisions=len(decisions),
            rows_written=len(decisions),
            detail={"applied": len(results), "error": error},
        )
        summary[node.name] = {"decisions": len(decisions), "changes": results, "error": error}
    if failures:
        raise LoopFailed(" | ".join(failures))
    return summary
