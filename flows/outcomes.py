"""outcomes: what each fee change and each finished rebalance really earned vs. its prediction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from flows.common import LoopFailed, current_run_id, resolve_now
from models.settings import load_settings
from tasks.fees import known_node_ids
from tasks.ledger import heartbeat_finish, heartbeat_start, raise_alert
from tasks.outcomes import measure_fee_outcomes
from tasks.rebalance_outcomes import measure_rebalance_outcomes

LOOP = "outcomes"


@flow(name="outcomes")
def outcomes(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = load_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    node_ids = known_node_ids(wh)
    summary: dict[str, Any] = {}
    failures: list[str] = []
    for node in settings.nodes:
        heartbeat_start(wh, run_id, LOOP, node.name, at)
        node_id = node.node_id or node_ids.get(node.name)
        error, measured, insufficient = None, 0, 0
        if node_id is None:
            error = f"node {node.name} has never been collected; run collect first"
        else:
            errors = []
            for measure in (measure_fee_outcomes, measure_rebalance_outcomes):
                state = measure(wh, node_id, at, return_state=True)
                if state.is_failed():
                    errors.append(f"{measure.name}: {state.result(raise_on_failure=False)}")
                else:
                    done, unmeasurable = state.result()
                    measured += done
                    insufficient += unmeasurable
            if errors:
                error = f"node {node.name}: " + "; ".join(errors)
        if error:
            failures.append(error)
            raise_alert(
                wh,
                loop=LOOP,
                kind="outcomes_failed",
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
            rows_written=measured + insufficient,
            decisions=measured,
            detail={"measured": measured, "insufficient_data": insufficient},
        )
        summary[node.name] = {"measured": measured, "insufficient_data": insufficient}
    if failures:
        raise LoopFailed(" | ".join(failures))
    return summary
