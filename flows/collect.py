"""collect: snapshot every node, sync its forwards, competitor fees, on-chain costs and
bookkeeper's books, and record fee changes hiveops did not make."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger

from flows.common import LoopFailed, current_run_id, loop_settings, resolve_now
from flows.hooks import LOOP_HOOKS
from tasks.books import collect_books, detect_external_changes
from tasks.collect import (
    check_snapshot,
    collect_costs,
    collect_peer_fees,
    fetch_node_state,
    store_snapshot,
    sync_forwards,
)
from tasks.ledger import heartbeat_finish, heartbeat_start, raise_alert

LOOP = "collect"


@flow(name="collect", log_prints=False, **LOOP_HOOKS)
def collect(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    at = resolve_now(now)
    run_id = current_run_id()
    wh, rpc, lock_s = settings.warehouse_path, settings.rpc, settings.warehouse.lock_timeout_s
    logger = get_run_logger()

    states = {}
    for node in settings.nodes:
        heartbeat_start(wh, run_id, LOOP, node.name, at)
        states[node.name] = fetch_node_state(node, rpc, at, node.fleet_member, return_state=True)
    fetched = {n: s.result() for n, s in states.items() if s.is_completed()}
    fleet_ids = {s.info.id for s in fetched.values() if s.is_fleet}
    fleet_ids |= {n.node_id for n in settings.nodes if n.fleet_member and n.node_id}
    our_ids = {s.info.id for s in fetched.values()}

    summary: dict[str, Any] = {}
    failures: list[str] = []
    for node in settings.nodes:
        rows, errors = 0, []
        state = fetched.get(node.name)
        if state is None:
            errors.append(_error(states[node.name]))
            raise_alert(
                wh,
                loop=LOOP,
                kind="node_unreachable",
                severity="critical",
                message=errors[-1],
                raised_at=at,
                node=node.name,
            )
        else:
            guard = check_snapshot(state, return_state=True)
            if guard.is_failed():
                errors.append(_error(guard))
                raise_alert(
                    wh,
                    loop=LOOP,
                    kind="zero_snapshot",
                    severity="critical",
                    message=errors[-1],
                    raised_at=at,
                    node=node.name,
                )
            else:
                rows += store_snapshot(wh, state, fleet_ids, lock_s)
            steps = [
                sync_forwards(wh, node, rpc, state.info.id, lock_s, return_state=True),
                collect_peer_fees(wh, node, rpc, state, our_ids, lock_s, return_state=True),
                collect_costs(wh, node, rpc, state.info.id, lock_s, return_state=True),
                collect_books(wh, node, rpc, state, lock_s, return_state=True),
            ]
            if not guard.is_failed():
                steps.append(detect_external_changes(wh, state.info.id, lock_s, return_state=True))
            for step in steps:
                if step.is_completed():
                    rows += step.result()
                else:
                    errors.append(_error(step))
                    raise_alert(
                        wh,
                        loop=LOOP,
                        kind="collect_step_failed",
                        severity="warning",
                        message=errors[-1],
                        raised_at=at,
                        node=node.name,
                    )
        heartbeat_finish(
            wh,
            run_id,
            LOOP,
            node.name,
            resolve_now(now),
            ok=not errors,
            rows_written=rows,
            detail={"errors": errors} if errors else None,
        )
        summary[node.name] = {"rows": rows, "errors": errors}
        failures += errors
        logger.info("%s: %d rows%s", node.name, rows, f", {len(errors)} errors" if errors else "")
    if failures:
        raise LoopFailed(f"collect failed for {len(failures)} step(s): " + " | ".join(failures))
    return summary


def _error(state: Any) -> str:
    try:
        state.result()
    except Exception as exc:
        return str(exc)
    return state.message or "failed"
