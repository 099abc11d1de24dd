"""outcomes: what each fee change, finished rebalance, channel open and close and external change
really earned vs. its prediction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from flows.common import start_loop
from flows.hooks import LOOP_HOOKS
from tasks.books_outcomes import measure_action_outcomes
from tasks.ledger import heartbeat_start
from tasks.outcomes import measure_fee_outcomes
from tasks.rebalance_outcomes import measure_rebalance_outcomes

LOOP = "outcomes"


@flow(name="outcomes", **LOOP_HOOKS)
def outcomes(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    run = start_loop(LOOP, config_path, now)
    wh, at = run.settings.warehouse_path, run.at
    for node in run.settings.nodes:
        heartbeat_start(wh, run.run_id, LOOP, node.name, at)
        node_id = run.node_id(node)
        error, measured, insufficient = None, 0, 0
        if node_id is None:
            error = run.never_collected(node)
        else:
            errors = []
            horizon_days = run.settings.advisor.open_horizon_days
            states = [
                measure_fee_outcomes(wh, node_id, at, return_state=True),
                measure_rebalance_outcomes(wh, node_id, at, return_state=True),
                measure_action_outcomes(wh, node_id, at, horizon_days, return_state=True),
            ]
            for measure, state in zip(
                (measure_fee_outcomes, measure_rebalance_outcomes, measure_action_outcomes),
                states,
                strict=True,
            ):
                if state.is_failed():
                    errors.append(f"{measure.name}: {state.result(raise_on_failure=False)}")
                else:
                    done, unmeasurable = state.result()
                    measured += done
                    insufficient += unmeasurable
            if errors:
                error = f"node {node.name}: " + "; ".join(errors)
        run.finish_node(
            node,
            error,
            decisions=measured,
            rows_written=measured + insufficient,
            detail={"measured": measured, "insufficient_data": insufficient},
        )
    return run.end()
