"""Rebalance planning tasks: read the node's state, plan, reserve and record in one lock hold.

The warehouse writer lock is held from reading the ledger to writing the reservations, so two
runs at once (a manual run beside the scheduled one) cannot both spend the same budget: the
second one reads the first one's reservations and sees less money and busy channels.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.rebalance import breaker_from_attempts, build_ledger, plan_rebalances, reserve
from engine.rebalance.allocate import skip_from
from engine.rebalance.routes import GossipGraph
from engine.rebalance.rows import (
    attempt_from_row,
    attempt_row,
    channel_from_row,
    ledger_row,
    reservation_row,
    skip_row,
)
from models.budget import BudgetLedger, Refusal, Reservation
from models.rebalance import RebalanceProposal, Skip, SkipReason
from models.rebalance_policy import RebalancePolicy
from models.settings import NodeConfig, RpcConfig, Settings
from tasks.gateway import NodeGateway
from warehouse import db

HISTORY_DAYS = 30


class NoRebalanceState(RuntimeError):
    pass


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _ledger(con: Any, node_id: str, day: date, settings: Settings, now: datetime) -> BudgetLedger:
    """The day's ledger from facts, with every reservation still open."""
    since = now - timedelta(days=max(HISTORY_DAYS, settings.budget.earnings_window_days + 1))
    open_rows = db.fetch_all(con, "rebalance.open_reservations", node_id=node_id)
    return build_ledger(
        node_id,
        day,
        forwards=db.fetch_frame(con, "rebalance.forwards", node_id=node_id, since=since),
        onchain_costs=db.fetch_frame(con, "rebalance.onchain_costs", node_id=node_id, since=since),
        rebalance_fees=db.fetch_frame(con, "rebalance.fees_paid", node_id=node_id, since=since),
        reservations=[
            Reservation(
                attempt_id=r["attempt_id"],
                node_id=r["node_id"],
                max_fee_msat=int(r["max_fee_msat"]),
                reserved_at=_utc(r["reserved_at"]),
                scid=r["scid"],
            )
            for r in open_rows
        ],
        config=settings.budget,
    )


def read_policies(con: Any) -> list[RebalancePolicy]:
    """The operators' rebalance policies (`hiveops policy rebalance set`)."""
    return [
        RebalancePolicy(
            mode=r["mode"],
            peer_id=r["peer_id"],
            scid=r["scid"],
            created_at=None if r["created_at"] is None else _utc(r["created_at"]),
            note=r["note"],
        )
        for r in db.fetch_all(con, "rebalance.list_policies")
    ]


def _assistance_requests(con: Any, node_id: str) -> dict[str, dict[str, Any]]:
    """dest scid -> the fleet loop's open liquidity request that this node must run."""
    rows = db.fetch_all(con, "fleet.open_liquidity_requests")
    return {r["dest_scid"]: r for r in rows if r["node_id"] == node_id}


@task(name="read-gossip", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_gossip(node: NodeConfig, rpc: RpcConfig) -> GossipGraph:
    """The public graph as this node's gossip has it, to price circular routes before paying
    for a job (sling prices its routes from the same gossip)."""
    payload = NodeGateway(node, rpc).call("listchannels")
    return GossipGraph.from_listchannels(payload.get("channels", []))


@task(name="plan-rebalances", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def plan_and_reserve(
    warehouse_path: Path,
    node_id: str,
    settings: Settings,
    now: datetime,
    run_id: str,
    gossip: GossipGraph | None = None,
) -> tuple[list[RebalanceProposal], list[Skip]]:
    """Plan one node's pulls, reserve their worst-case fee, record attempts, skips and ledger.

    Attempt ids are `node:scid:time`, and every insert is INSERT OR IGNORE: a retried task
    finds its own rows and reservations (reserve is idempotent per attempt id). Without
    `gossip` (listchannels failed) routes are not priced first and sling finds out.
    """
    since = now - timedelta(days=HISTORY_DAYS)
    dry_run = settings.dry_run
    with db.writer(warehouse_path, who="rebalance plan") as con:
        rows = db.fetch_all(con, "rebalance.channels", node_id=node_id)
        if not rows:
            raise NoRebalanceState(f"no channel snapshot for node {node_id}: run collect first")
        taken_at = _utc(rows[0]["taken_at"])
        age_s = (now - taken_at).total_seconds()
        if age_s > 6 * 3600:
            raise NoRebalanceState(
                f"latest snapshot of node {node_id} is {age_s / 3600:.1f} h old; rebalance "
                f"decides only on state younger than 6 h (is collect running?)"
            )
        channels = [channel_from_row(r) for r in rows]
        attempts = [
            attempt_from_row({**r, "finished_at": _utc(r["finished_at"])})
            for r in db.fetch_all(con, "rebalance.finished_attempts", node_id=node_id, since=since)
        ]
        ledger = _ledger(con, node_id, now.date(), settings, now)
        assist = _assistance_requests(con, node_id)
        policies = read_policies(con)
        resumes = {
            r["scid"]: _utc(r["resumed_at"]) for r in db.fetch_all(con, "rebalance.latest_resumes")
        }
        flows = db.fetch_frame(con, "rebalance.forwards", node_id=node_id, since=since)
        decided = plan_rebalances(
            channels,
            flows,
            ledger,
            breaker_from_attempts(attempts, resumes=resumes),
            settings.rebalance,
            now,
            attempts=attempts,
            assist_scids=assist,
            gossip=gossip,
            policies=policies,
        )
        proposals: list[RebalanceProposal] = []
        skips: list[Skip] = []
        reservations: list[Reservation] = []
        for item in decided:
            if isinstance(item, Skip):
                skips.append(item)
                continue
            if dry_run:
                proposals.append(item)
                continue
            ledger, held = reserve(
                ledger, item.attempt_id, item.max_cost_msat, now=now, scid=item.dest_scid
            )
            if isinstance(held, Refusal):
                skips.append(skip_from(item, SkipReason.BUDGET_EXHAUSTED, held.detail))
            else:
                proposals.append(item)
                reservations.append(held)
        con.execute("BEGIN TRANSACTION")
        if proposals:
            attempt_rows = [
                attempt_row(
                    p,
                    run_id=run_id,
                    dry_run=dry_run,
                    assistance_id=(assist.get(p.dest_scid) or {}).get("assistance_id"),
                )
                for p in proposals
            ]
            db.stage(con, pl.DataFrame(attempt_rows, infer_schema_length=None))
            db.run(con, "rebalance.insert_attempts")
        if reservations:
            res_rows = [reservation_row(r) for r in reservations]
            db.stage(con, pl.DataFrame(res_rows, infer_schema_length=None))
            db.run(con, "rebalance.insert_reservations")
        if skips:
            skip_rows = [skip_row(s, run_id=run_id, node_id=node_id, at=now) for s in skips]
            db.stage(con, pl.DataFrame(skip_rows, infer_schema_length=None))
            db.run(con, "rebalance.insert_skips")
        db.stage(con, pl.DataFrame([ledger_row(ledger, now)]))
        db.run(con, "rebalance.upsert_ledger")
        con.execute("COMMIT")
    return ([] if dry_run else proposals), skips


@task(name="refresh-ledger", retries=2, retry_delay_seconds=2)
def refresh_ledger(
    warehouse_path: Path, node_id: str, settings: Settings, now: datetime
) -> dict[str, int]:
    """Rewrite today's and yesterday's ledger rows from facts (yesterday's fees may have been
    settled after midnight by this run's reconcile)."""
    days = [now.date() - timedelta(days=1), now.date()]
    with db.writer(warehouse_path, who="rebalance ledger") as con:
        ledgers = [_ledger(con, node_id, day, settings, now) for day in days]
        today = ledgers[-1]
        ledgers[0] = ledgers[0].model_copy(update={"reservations": ()})
        db.stage(con, pl.DataFrame([ledger_row(led, now) for led in ledgers]))
        db.run(con, "rebalance.upsert_ledger")
    return {
        "budget_msat": today.budget_msat,
        "earned_msat": today.earned_msat,
        "spent_msat": today.spent_msat,
        "reserved_msat": today.reserved_msat,
    }
