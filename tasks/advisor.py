"""Advisor tasks: read what the scan needs, record decisions and answers, act on approved ones.

Plain functions (`record_answer`, `find_decision`) are shared with `hiveops approve|reject`,
which must not need a flow run to write an operator's answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect import task

from engine.advisor.decide import cooldown_s
from engine.advisor.graph import NodeEconomics, graph_summary
from engine.advisor.scan import ChannelInputs
from models.advisor import AdvisorConfig, AdvisorDecision, OpportunityType
from models.fees import FeePolicy
from models.settings import NodeConfig, RpcConfig, Settings
from tasks.gateway import NodeError, NodeGateway
from warehouse import db

LOOKBACK_DAYS = 14
REVENUE_DAYS = 30
ANSWER_WINDOW_DAYS = 30
STALE_SNAPSHOT_S = 6 * 3600
CLOSED_STATES = ("ONCHAIN", "CLOSED", "FUNDING_SPEND_SEEN", "CLOSINGD_COMPLETE")


class NoFreshSnapshot(RuntimeError):
    pass


class DecisionNotFound(LookupError):
    pass


@task(name="load-advisor-channels", retries=2, retry_delay_seconds=2)
def load_channel_inputs(
    warehouse_path: Path, node_id: str, settings: Settings, config: AdvisorConfig, now: datetime
) -> ChannelInputs:
    with db.writer(warehouse_path, who="advisor read") as con:
        inputs = read_channel_inputs(con, node_id, settings, config, now)
    if inputs.channels.is_empty():
        raise NoFreshSnapshot(f"no channel snapshot for node {node_id}: run collect first")
    age_s = (now - inputs.channels["taken_at"].max().astimezone(UTC)).total_seconds()  # type: ignore[union-attr]
    if age_s > STALE_SNAPSHOT_S:
        raise NoFreshSnapshot(
            f"latest snapshot of node {node_id} is {age_s / 3600:.1f} h old; the advisor decides "
            f"only on state younger than {STALE_SNAPSHOT_S // 3600} h (is collect running?)"
        )
    return inputs


def read_channel_inputs(
    con: duckdb.DuckDBPyConnection,
    node_id: str,
    settings: Settings,
    config: AdvisorConfig,
    as_of: datetime,
) -> ChannelInputs:
    """The scan's inputs from the warehouse as it stood at `as_of` (nothing later is read)."""
    channels = db.fetch_frame(
        con,
        "advisor.channel_stats",
        node_id=node_id,
        as_of=as_of,
        since=as_of - timedelta(days=LOOKBACK_DAYS),
        idle_since=as_of - timedelta(days=config.close_idle_days),
    )
    peer_policies = db.fetch_frame(con, "advisor.peer_policies", node_id=node_id, as_of=as_of)
    policies = tuple(FeePolicy.model_validate(r) for r in db.fetch_all(con, "advisor.fee_policies"))
    return ChannelInputs(
        node_id=node_id,
        channels=channels,
        peer_policies=peer_policies,
        policies=policies,
        window_s=LOOKBACK_DAYS * 86_400,
        fee_step_pct=settings.fees.max_step_pct,
        rebalance_chunk_sat=settings.rebalance.chunk_sat,
        rebalance_max_fee_ppm=settings.rebalance.max_fee_ppm,
        fee_config=settings.fees,
    )


@task(name="load-node-economics", retries=2, retry_delay_seconds=2)
def load_node_economics(warehouse_path: Path, node_id: str, now: datetime) -> NodeEconomics | None:
    with db.writer(warehouse_path, who="advisor read") as con:
        row = db.fetch_one(
            con, "advisor.node_economics", node_id=node_id, since=now - timedelta(days=REVENUE_DAYS)
        )
    if not row:
        return None
    return NodeEconomics(
        node_id=node_id,
        capacity_msat=int(row["capacity_msat"]),
        onchain_msat=int(row["onchain_msat"]),
        revenue_30d_msat=int(row["revenue_30d_msat"]),
        peers=frozenset(row["peers"] or ()),
    )


@task(name="fetch-graph", retries=1, retry_delay_seconds=2)
def fetch_graph(node: NodeConfig, rpc: RpcConfig) -> pl.DataFrame:
    """The public graph as one node's gossip sees it, summarised per graph node."""
    payload = NodeGateway(node, rpc).call("listchannels")
    return graph_summary(payload.get("channels", []))


@task(name="load-fleet-proposals")
def load_fleet_proposals(warehouse_path: Path) -> pl.DataFrame:
    """The fleet loop's open proposals (channel opens it wants decided)."""
    with db.writer(warehouse_path, who="advisor read") as con:
        return db.fetch_frame(con, "fleet.open_proposals")


@task(name="fleet-node-ids")
def fleet_node_ids(warehouse_path: Path) -> frozenset[str]:
    with db.writer(warehouse_path, who="advisor read") as con:
        return frozenset(r["node_id"] for r in db.fetch_all(con, "advisor.fleet_node_ids"))


@dataclass(frozen=True)
class Learning:
    """What earlier decisions taught: measured outcomes, rejections, live decisions, alerts."""

    samples: pl.DataFrame  # advisor.calibration_samples: the advisor's own decisions
    backtests: pl.DataFrame  # advisor.backtest_samples: its estimate on the fees loop's changes
    rejections: pl.DataFrame
    answers: pl.DataFrame
    open_keys: frozenset[tuple[OpportunityType, str]]
    alerted: frozenset[str]


@task(name="load-advisor-learning", retries=2, retry_delay_seconds=2)
def load_learning(warehouse_path: Path, now: datetime) -> Learning:
    with db.writer(warehouse_path, who="advisor read") as con:
        samples = db.fetch_frame(con, "advisor.calibration_samples", until=now)
        backtests = db.fetch_frame(con, "advisor.backtest_samples", until=now)
        rejections = db.fetch_frame(con, "advisor.rejections")
        answers = db.fetch_frame(
            con, "advisor.answers", since=now - timedelta(days=ANSWER_WINDOW_DAYS)
        )
        open_keys = db.fetch_all(con, "advisor.open_keys", now=now)
        alerted = db.fetch_all(con, "advisor.alerted_keys")
    return Learning(
        samples=samples,
        backtests=backtests,
        rejections=rejections,
        answers=answers,
        open_keys=frozenset(
            (OpportunityType(r["opportunity_type"]), r["target"]) for r in open_keys
        ),
        alerted=frozenset(r["key"] for r in alerted),
    )


def _decision_row(d: AdvisorDecision) -> dict[str, Any]:
    row = d.model_dump(mode="python")
    for key in ("opportunity_type", "owner_loop", "mode", "state"):
        row[key] = str(row[key])
    row["action_params"] = json.dumps(d.action_params, default=str, sort_keys=True)
    row["snapshot_metrics"] = json.dumps(d.snapshot_metrics, default=str, sort_keys=True)
    return row


@task(name="record-advisor-decisions", retries=2, retry_delay_seconds=2)
def record_decisions(warehouse_path: Path, decisions: list[AdvisorDecision]) -> int:
    if not decisions:
        return 0
    with db.writer(warehouse_path, who="advisor record") as con:
        db.stage(con, pl.DataFrame([_decision_row(d) for d in decisions], infer_schema_length=None))
        db.run(con, "advisor.insert_decisions")
    return len(decisions)


@task(name="expire-advisor-decisions", retries=2, retry_delay_seconds=2)
def expire_decisions(warehouse_path: Path, now: datetime) -> int:
    with db.writer(warehouse_path, who="advisor expire") as con:
        return len(db.fetch_all(con, "advisor.expire_decisions", now=now))


@task(name="link-owned-actions", retries=2, retry_delay_seconds=2)
def link_owned_actions(warehouse_path: Path) -> dict[str, int]:
    """Auto decisions the fees and rebalance loops carried out, linked to their actions."""
    with db.writer(warehouse_path, who="advisor link") as con:
        fees = len(db.fetch_all(con, "advisor.link_fee_changes"))
        rebalances = len(db.fetch_all(con, "advisor.link_rebalance_attempts"))
    return {"fee_changes": fees, "rebalance_attempts": rebalances}


def _parse(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("action_params", "snapshot_metrics"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def find_decision(warehouse_path: Path, id_or_prefix: str) -> dict[str, Any]:
    """A decision by id or unique prefix; DecisionNotFound says which and how to list them."""
    if len(id_or_prefix) < 4:
        raise DecisionNotFound(f"decision id {id_or_prefix!r} is too short: give 4+ characters")
    with db.writer(warehouse_path, who="advisor read") as con:
        rows = db.fetch_all(con, "advisor.find_decision", prefix=id_or_prefix)
    if not rows:
        raise DecisionNotFound(
            f"no advisor decision {id_or_prefix!r}; `hiveops approvals list` shows pending ones"
        )
    if len(rows) > 1:
        raise DecisionNotFound(f"decision id prefix {id_or_prefix!r} is ambiguous; give more of it")
    return _parse(rows[0])


@task(name="load-advisor-decision", retries=2, retry_delay_seconds=1)
def load_decision(warehouse_path: Path, decision_id: str) -> dict[str, Any]:
    return find_decision(warehouse_path, decision_id)


@task(name="mark-awaiting-approval", retries=2, retry_delay_seconds=1)
def mark_awaiting(warehouse_path: Path, decision_id: str, run_id: str) -> None:
    with db.writer(warehouse_path, who="advisor await") as con:
        db.run(con, "advisor.mark_awaiting", decision_id=decision_id, run_id=run_id)


def record_answer(
    warehouse_path: Path,
    decision_id: str,
    *,
    approved: bool,
    reason: str,
    by: str,
    at: datetime,
    config: AdvisorConfig,
) -> bool:
    """Store an operator's answer; False when the decision was no longer pending (already
    answered, expired or executed), so a second answer changes nothing."""
    if not approved and not reason.strip():
        raise ValueError("a rejection needs a reason (--reason TEXT): it feeds the next scoring")
    decision = find_decision(warehouse_path, decision_id)
    with db.writer(warehouse_path, who="advisor answer") as con:
        cooldown_until = None
        if not approved:
            before = db.fetch_one(
                con,
                "advisor.prior_rejections",
                opportunity_type=decision["opportunity_type"],
                target=decision["target"],
            )["n"]
            cooldown_until = at + timedelta(seconds=cooldown_s(int(before) + 1, config))
        changed = db.fetch_all(
            con,
            "advisor.answer",
            decision_id=decision["decision_id"],
            state="approved" if approved else "rejected",
            answered_at=at,
            answered_by=by,
            answer_reason=reason or None,
            cooldown_until=cooldown_until,
        )
        assistance_id = decision["snapshot_metrics"].get("assistance_id")
        if changed and decision["opportunity_type"] == "fleet_assistance" and assistance_id:
            _tell_fleet(con, assistance_id, approved, reason, by, at)
    return bool(changed)


def _tell_fleet(
    con: Any, assistance_id: str, approved: bool, reason: str, by: str, at: datetime
) -> None:
    """Hand the answer to the fleet loop's proposal, which closes it with an outcome."""
    db.run(
        con,
        "fleet.decide_proposal",
        assistance_id=assistance_id,
        state="accepted" if approved else "rejected",
        decided_at=at,
        note=f"advisor: {'approved' if approved else 'rejected'} by {by}: {reason}".strip(": "),
    )


@task(name="record-approval-answer", retries=2, retry_delay_seconds=1)
def record_answer_task(
    warehouse_path: Path,
    decision_id: str,
    approved: bool,
    reason: str,
    by: str,
    at: datetime,
    config: AdvisorConfig,
) -> bool:
    return record_answer(
        warehouse_path, decision_id, approved=approved, reason=reason, by=by, at=at, config=config
    )


@task(name="approved-unexecuted")
def approved_unexecuted(warehouse_path: Path) -> list[str]:
    with db.writer(warehouse_path, who="advisor read") as con:
        return [r["decision_id"] for r in db.fetch_all(con, "advisor.approved_unexecuted")]


def _node_for(settings: Settings, node_id: str, names: dict[str, str]) -> NodeConfig:
    for node in settings.nodes:
        if (node.node_id or names.get(node.name)) == node_id:
            return node
    raise NodeError("?", "advisor", f"no configured node has id {node_id}; check [[nodes]]")


@task(name="execute-advisor-decision")
def execute_decision(
    warehouse_path: Path, settings: Settings, decision_id: str, names: dict[str, str], at: datetime
) -> str:
    """Carry out one approved open or close, at most once (the start is recorded first)."""
    decision = find_decision(warehouse_path, decision_id)
    params = decision["action_params"]
    if settings.dry_run:
        result, state = f"dry_run: would {decision['action']} {json.dumps(params)}", "approved"
        with db.writer(warehouse_path, who="advisor execute") as con:
            db.run(con, "advisor.start_execution", decision_id=decision_id, at=at)
            db.run(
                con,
                "advisor.finish_execution",
                decision_id=decision_id,
                state=state,
                executed_at=None,
                result=result,
            )
        return result
    with db.writer(warehouse_path, who="advisor execute") as con:
        if not db.fetch_all(con, "advisor.start_execution", decision_id=decision_id, at=at):
            return "not executed: not approved, or already started by another run"
    state, result = "executed", ""
    try:
        gw = NodeGateway(_node_for(settings, decision["node_id"], names), settings.rpc)
        result = _act(gw, decision["action"], params)
    except NodeError as exc:
        state, result = "approved", f"failed: {exc}"
    with db.writer(warehouse_path, who="advisor execute") as con:
        db.run(
            con,
            "advisor.finish_execution",
            decision_id=decision_id,
            state=state,
            executed_at=at if state == "executed" else None,
            result=result,
        )
    if state != "executed":
        raise NodeError(decision["node_id"][:12], decision["action"], result)
    return result


def _act(gw: NodeGateway, action: str, params: dict[str, Any]) -> str:
    if action == "fundchannel":
        peer = params["peer_id"]
        existing = gw.call("listpeerchannels", {"id": peer}).get("channels", [])
        if any(c.get("state") not in CLOSED_STATES for c in existing):
            return f"skipped: a channel with {peer} already exists"
        gw.call("connect", {"id": peer})
        # Never resent after a lost answer: the next run's listpeerchannels check finds the
        # channel if this one went through.
        funded = gw.call(
            "fundchannel", {"id": peer, "amount": int(params["amount_sat"])}, idempotent=False
        )
        return f"funded {params['amount_sat']} sat to {peer}: txid {funded.get('txid')}"
    if action == "close":
        closed = gw.call("close", {"id": params["scid"]}, idempotent=False)
        return f"closed {params['scid']}: {closed.get('type', 'mutual')} txid {closed.get('txid')}"
    raise ValueError(
        f"advisor cannot execute action {action!r} (fee and rebalance moves belong to their loops)"
    )


def calibration_report(
    warehouse_path: Path, start: datetime, end: datetime, config: AdvisorConfig
) -> list[str]:
    """Prediction error per type, first vs second half of [start, end): for the demo and
    operators (`advisor_calibration` has the rows)."""
    from engine.advisor.predict import calibration_halves, format_calibration, walk_forward

    with db.reader(warehouse_path) as con:
        samples = db.fetch_frame(con, "advisor.calibration_samples", until=end)
        backtests = db.fetch_frame(con, "advisor.backtest_samples", until=end)
    changes = walk_forward(backtests, config)
    return format_calibration(
        calibration_halves(samples, start, end)
        + calibration_halves(changes, start, end, evidence="fee changes")
    )
