"""advisor: scan for opportunities, predict their benefit, decide who acts, ask for approvals.

Two flows. `advisor` is the scheduled loop: expire stale decisions, link auto decisions to the
fees/rebalance loops' actions, learn from measured outcomes and rejections, record a decision
for every opportunity, and carry out opens/closes approved while no run was waiting.
`advisor-execute` takes one approval-mode decision, pauses until an operator answers (Prefect
UI or `hiveops approve|reject`), then acts on an approval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from engine.advisor.decide import (
    AlertSpec,
    DecideContext,
    build_memory,
    decide,
    rejection_alerts,
    rejection_rates,
    score_penalties,
)
from engine.advisor.graph import NodeEconomics, scan_fleet_proposals, scan_opens
from engine.advisor.predict import fit_calibration
from engine.advisor.scan import ChannelInputs, scan_channels
from flows.common import LoopFailed, current_run_id, loop_settings, resolve_now
from flows.hooks import LOOP_HOOKS
from models.advisor import (
    AdvisorConfig,
    AdvisorDecision,
    Opportunity,
    OpportunityType,
    Skipped,
    advisor_config,
)
from tasks.advisor import (
    Learning,
    approved_unexecuted,
    execute_decision,
    expire_decisions,
    fetch_graph,
    fleet_node_ids,
    link_owned_actions,
    load_channel_inputs,
    load_decision,
    load_fleet_proposals,
    load_learning,
    load_node_economics,
    mark_awaiting,
    record_answer_task,
    record_decisions,
)
from tasks.advisor_backtest import backtest_fee_changes
from tasks.fees import known_node_ids
from tasks.ledger import FLEET_WIDE, heartbeat_finish, heartbeat_start, raise_alert

LOOP = "advisor"
EXECUTE_DEPLOYMENT = "advisor-execute/advisor-execute"


class ApprovalInput(RunInput):
    """What an operator answers to a paused advisor-execute run (UI form or `hiveops approve`)."""

    approved: bool
    reason: str = ""
    reviewer: str = "prefect-ui"


@task(name="scan-opportunities", cache_policy=NO_CACHE)
def scan_node(
    channel_inputs: ChannelInputs,
    economics: NodeEconomics | None,
    graph: Any,
    excluded: frozenset[str],
    learning: Learning,
    config: AdvisorConfig,
    now: datetime,
) -> list[Opportunity]:
    found = scan_channels(channel_inputs, config, now)
    if economics is not None and graph is not None:
        memory = build_memory(learning.rejections, config)
        penalties, type_penalty = score_penalties(memory, OpportunityType.CHANNEL_OPEN, config)
        cooling = {
            m.target
            for (kind, _), m in memory.items()
            if kind is OpportunityType.CHANNEL_OPEN and m.cooldown_until > now
        }  # so the next-best candidate is scored instead
        found += scan_opens(economics, graph, excluded | cooling, penalties, type_penalty, config)
    return found


@task(name="decide-advisor", cache_policy=NO_CACHE)
def decide_all(
    opportunities: list[Opportunity],
    learning: Learning,
    config: AdvisorConfig,
    now: datetime,
    run_id: str,
) -> tuple[list[AdvisorDecision], list[Skipped], list[AlertSpec]]:
    memory = build_memory(learning.rejections, config)
    ctx = DecideContext(
        calibrations=fit_calibration(
            learning.samples, config, before=now, backtests=learning.backtests
        ),
        memory=memory,
        open_keys=learning.open_keys,
        rates=rejection_rates(learning.answers),
    )
    decisions, skipped = decide(opportunities, ctx, config, now, run_id)
    return decisions, skipped, rejection_alerts(memory, learning.answers, learning.alerted, config)


@flow(name="advisor", **LOOP_HOOKS)
def advisor(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    config = advisor_config(settings)
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    names = known_node_ids(wh)
    for node in settings.nodes:
        heartbeat_start(wh, run_id, LOOP, node.name, at)
    linked = link_owned_actions(wh)  # before expiry: a move made in time still counts
    housekeeping = {"linked": linked, "expired": expire_decisions(wh, at), "backtested": 0}
    errors: dict[str, str | None] = {}
    for node in settings.nodes:  # before learning: today's fee changes are evidence too
        node_id = node.node_id or names.get(node.name)
        if node_id is None:
            continue
        scored = backtest_fee_changes(wh, node_id, settings, config, at, return_state=True)
        if scored.is_failed():  # learning from less is no reason to stop deciding: alert
            errors[node.name] = (
                f"node {node.name}: scoring fee changes for calibration failed: "
                f"{scored.result(raise_on_failure=False)}"
            )
        else:
            housekeeping["backtested"] += scored.result()
    learning = load_learning(wh, at)
    fleet_ids = fleet_node_ids(wh)
    graph, graph_error = None, None
    for node in settings.nodes:  # one node's gossip is the whole graph: the first that answers
        fetched = fetch_graph(node, settings.rpc, return_state=True)
        if not fetched.is_failed():
            graph = fetched.result()
            break
        graph_error = str(fetched.result(raise_on_failure=False))
    opportunities: list[Opportunity] = []
    economics: dict[str, NodeEconomics] = {}
    node_of: dict[str, str] = {}
    for node in settings.nodes:
        node_id = node.node_id or names.get(node.name)
        errors.setdefault(node.name, None)
        if node_id is None:
            errors[node.name] = f"node {node.name} has never been collected; run collect first"
            continue
        node_of[node_id] = node.name
        loaded = load_channel_inputs(wh, node_id, settings, config, at, return_state=True)
        if loaded.is_failed():
            errors[node.name] = f"node {node.name}: {loaded.result(raise_on_failure=False)}"
            continue
        econ = load_node_economics(wh, node_id, at)
        if econ is not None:
            economics[node_id] = econ
        opportunities += scan_node(loaded.result(), econ, graph, fleet_ids, learning, config, at)
    if graph is None and graph_error:
        first = settings.nodes[0].name if settings.nodes else FLEET_WIDE
        errors[first] = errors.get(first) or f"no node answered listchannels: {graph_error}"
    opportunities += scan_fleet_proposals(load_fleet_proposals(wh), economics, config)
    decisions, skipped, alerts = decide_all(opportunities, learning, config, at, run_id)
    record_decisions(wh, decisions)
    for spec in alerts:
        raise_alert(
            wh,
            loop=LOOP,
            kind=spec.kind,
            severity="warning",
            message=spec.message,
            raised_at=at,
            details=spec.details,
        )
    executed = _carry_out_approved(wh, settings, names, at)
    if config.launch_approval_runs:
        _launch_execute_runs(decisions, config_path)
    for node in settings.nodes:
        error = errors.get(node.name)
        if error:
            raise_alert(
                wh,
                loop=LOOP,
                kind="advisor_failed",
                severity="warning",
                message=error,
                raised_at=at,
                node=node.name,
            )
        node_id = node.node_id or names.get(node.name)
        mine = [d for d in decisions if node_of.get(d.node_id) == node.name or d.node_id == node_id]
        heartbeat_finish(
            wh,
            run_id,
            LOOP,
            node.name,
            at,
            ok=error is None,
            decisions=len(mine),
            rows_written=len(mine),
            detail={"states": _count(mine), "error": error},
        )
    failures = [e for e in errors.values() if e]
    if failures:
        raise LoopFailed(" | ".join(failures))
    return {
        "decisions": len(decisions),
        "states": _count(decisions),
        "skipped": len(skipped),
        "alerts": len(alerts),
        "executed": executed,
        **housekeeping,
    }


def _count(decisions: list[AdvisorDecision]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in decisions:
        key = f"{d.opportunity_type}:{d.state}"
        out[key] = out.get(key, 0) + 1
    return out


def _carry_out_approved(wh: Any, settings: Any, names: dict[str, str], at: datetime) -> list[str]:
    """Opens/closes approved from the CLI while no advisor-execute run was waiting."""
    results = []
    for decision_id in approved_unexecuted(wh):
        state = execute_decision(wh, settings, decision_id, names, at, return_state=True)
        results.append(str(state.result(raise_on_failure=False)))
    return results


def _launch_execute_runs(decisions: list[AdvisorDecision], config_path: str | None) -> None:
    """One paused advisor-execute run per new approval, so the Prefect UI can answer it."""
    from prefect.deployments import run_deployment

    for d in decisions:
        if str(d.state) != "pending_approval":
            continue
        try:
            run_deployment(
                EXECUTE_DEPLOYMENT,
                timeout=0,
                parameters={"decision_id": d.decision_id, "config_path": config_path},
            )
        except Exception as exc:  # no deployment (ad-hoc run): the CLI path still works
            get_run_logger().warning(
                "could not start %s for %s: %s", EXECUTE_DEPLOYMENT, d.decision_id, exc
            )


def _describe(decision: dict[str, Any]) -> str:
    return (
        f"**{decision['opportunity_type']}** `{decision['action']}` on node "
        f"`{decision['node_id'][:16]}…` → `{decision['target']}`\n\n"
        f"Predicted benefit **{decision['predicted_benefit_msat'] // 1000} sat** "
        f"(confidence {decision['confidence']:.2f}): {decision['benefit_reason']}\n\n"
        f"Params: `{decision['action_params']}`. Expires {decision['expires_at']}. "
        f"Approve, or reject with a reason (it sets a growing cooldown for this target)."
    )


@flow(name="advisor-execute")
def advisor_execute(
    decision_id: str,
    config_path: str | None = None,
    now: datetime | float | None = None,
    timeout_s: int | None = None,
    poll_interval_s: int | None = None,
) -> dict[str, Any]:
    settings = loop_settings(config_path)
    config = advisor_config(settings)
    wh = settings.warehouse_path
    decision = load_decision(wh, decision_id)
    decision_id = decision["decision_id"]
    if decision["state"] == "pending_approval":
        mark_awaiting(wh, decision_id, current_run_id())
        try:
            answer = pause_flow_run(
                wait_for_input=ApprovalInput.with_initial_data(description=_describe(decision)),
                timeout=int(timeout_s or config.approval_expiry_s),
                poll_interval=int(poll_interval_s or config.approval_poll_s),
            )
        except FlowPauseTimeout:
            return {"decision_id": decision_id, "state": "unanswered"}
        reason = answer.reason.strip() or ("" if answer.approved else "rejected without a reason")
        record_answer_task(
            wh,
            decision_id,
            answer.approved,
            reason,
            answer.reviewer,
            resolve_now(now),
            config,
        )
        decision = load_decision(wh, decision_id)
    result = None
    if decision["state"] == "approved" and decision["execution_started_at"] is None:
        names = known_node_ids(wh)
        result = execute_decision(wh, settings, decision_id, names, resolve_now(now))
        decision = load_decision(wh, decision_id)
    return {"decision_id": decision_id, "state": decision["state"], "result": result}
