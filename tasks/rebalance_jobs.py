"""Rebalance job tasks: reconcile what earlier runs started, then start this run's pulls.

Reconcile runs first in every cycle, so reservations and sling jobs left by a crashed run
(SIGKILL between reserving and finishing) are settled, released or stopped before any new
money is reserved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task

from engine.rebalance import reconcile
from engine.rebalance.sling_state import SlingTotals, observe_job
from models.budget import Reservation
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    JobObservation,
    JobStatus,
    RebalanceProposal,
    ReconcileAction,
    ReconcileKind,
)
from models.settings import NodeConfig, RpcConfig
from tasks import sling
from tasks.gateway import NodeError, NodeGateway, NodeUnreachable, RuneRejected
from warehouse import db


def _close(
    con: Any,
    action: ReconcileAction,
    seen: JobObservation | None,
    source_scid: str | None,
    now: datetime,
) -> None:
    """Finish the attempt and close its reservation in one transaction (both idempotent)."""
    settled = action.kind in (ReconcileKind.SETTLE, ReconcileKind.STOP_AND_SETTLE)
    succeeded = seen is not None and seen.status is JobStatus.SUCCEEDED
    never_ran = (seen is None or seen.status is JobStatus.GONE) and not settled
    state = "succeeded" if succeeded else "released" if never_ran else "failed"
    con.execute("BEGIN TRANSACTION")
    db.run(
        con,
        "rebalance.finish_attempt",
        attempt_id=action.attempt_id,
        state=state,
        finished_at=now,
        fee_msat=action.fee_msat if settled else None,
        fee_is_estimate=action.fee_is_estimate,
        moved_msat=seen.moved_msat if seen else 0,
        source_scid=source_scid if succeeded else None,
        failure_reason=None if succeeded else action.reason,
    )
    db.run(
        con,
        "rebalance.close_reservation",
        attempt_id=action.attempt_id,
        closed_at=now,
        closed_as="settled" if settled else "released",
        fee_msat=action.fee_msat if settled else None,
        fee_is_estimate=action.fee_is_estimate,
        close_reason=action.reason,
    )
    con.execute("COMMIT")


@task(name="reconcile-rebalances", retries=1, retry_delay_seconds=2)
def reconcile_jobs(
    warehouse_path: Path, node: NodeConfig, rpc: RpcConfig, node_id: str, now: datetime
) -> dict[str, int]:
    """Settle, release or stop every open reservation of this node; clean orphaned once-jobs."""
    with db.writer(warehouse_path, who="rebalance reconcile") as con:
        open_rows = db.fetch_all(con, "rebalance.open_reservations", node_id=node_id)
        owned = {r["scid"] for r in db.fetch_all(con, "rebalance.owned_scids", node_id=node_id)}
    gw = NodeGateway(node, rpc)
    counts = {"settled": 0, "released": 0, "kept": 0, "stopped": 0, "orphans_cleaned": 0}
    job_settings = sling.jobs(gw) if (open_rows or owned) else {}
    job_states = sling.states(gw) if open_rows else {}
    observations: dict[str, JobObservation] = {}
    partners: dict[str, str | None] = {}
    reservations = []
    for row in open_rows:
        scid = row["dest_scid"]
        before = (
            SlingTotals.model_validate_json(row["sling_before"]) if row["sling_before"] else None
        )
        after = sling.totals(gw, scid)
        observations[row["attempt_id"]] = observe_job(
            row["attempt_id"],
            before=before,
            after=after,
            has_job=scid in job_settings,
            state=job_states.get(scid),
        )
        partners[row["attempt_id"]] = after.last_partner
        reservations.append(
            Reservation(
                attempt_id=row["attempt_id"],
                node_id=node_id,
                max_fee_msat=int(row["max_fee_msat"]),
                reserved_at=row["reserved_at"].astimezone(UTC),
                scid=scid,
            )
        )
    actions = reconcile(
        reservations, observations, now, ttl_s=DEFAULT_REBALANCE_TUNING.reservation_ttl_s
    )
    for action in actions:
        seen = observations.get(action.attempt_id)
        if action.kind is ReconcileKind.KEEP:
            counts["kept"] += 1
            continue
        # A finished, failed or overdue once-job is stopped and deleted before its money is
        # released: a failing sling-once retries forever otherwise.
        if action.scid and action.scid in job_settings:
            sling.stop_and_delete(gw, action.scid)
            counts["stopped"] += 1
        with db.writer(warehouse_path, who="rebalance reconcile") as con:
            _close(con, action, seen, partners.get(action.attempt_id), now)
        settled = action.kind in (ReconcileKind.SETTLE, ReconcileKind.STOP_AND_SETTLE)
        counts["settled" if settled else "released"] += 1
    handled = {a.scid for a in actions}
    for scid, settings in job_settings.items():
        # a sling-once on a channel we rebalance, with no reservation of ours: a crashed run's
        if scid in owned and scid not in handled and "onceamount_msat" in settings:
            sling.stop_and_delete(gw, scid)
            counts["orphans_cleaned"] += 1
    return counts


@task(name="start-rebalances")
def start_jobs(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    proposals: list[RebalanceProposal],
    now: datetime,
) -> dict[str, str]:
    """sling-once per proposal; the stats baseline is stored before the job is started."""
    gw = NodeGateway(node, rpc)
    results: dict[str, str] = {}
    refused: RuneRejected | None = None  # the rune forbids sling: no further calls
    for proposal in proposals:
        try:
            if refused is not None:
                raise RuneRejected(
                    refused.node,
                    refused.method,
                    "not attempted: the rune already refused this call in this run",
                    refused.code,
                )
            before = sling.totals(gw, proposal.dest_scid)
            with db.writer(warehouse_path, who="rebalance start") as con:
                db.run(
                    con,
                    "rebalance.mark_started",
                    attempt_id=proposal.attempt_id,
                    sling_before=before.model_dump_json(),
                    state="running",
                    started_at=now,
                )
            sling.start_once(gw, proposal)
            results[proposal.dest_scid] = "started"
        except NodeUnreachable as exc:
            # Marked started, its reservation open: the job may be running on the node, and
            # the next run's reconcile settles or releases it from what sling reports.
            results[proposal.dest_scid] = (
                f"unknown: {exc}; the reservation stays open until the next run reconciles it"
            )
        except NodeError as exc:
            _fail_start(warehouse_path, proposal, str(exc), now)
            results[proposal.dest_scid] = f"failed: {exc}"
            refused = exc if isinstance(exc, RuneRejected) else refused
    return results


def _fail_start(
    warehouse_path: Path, proposal: RebalanceProposal, error: str, now: datetime
) -> None:
    action = ReconcileAction(
        attempt_id=proposal.attempt_id,
        kind=ReconcileKind.RELEASE,
        scid=proposal.dest_scid,
        reason=f"sling-once refused: {error}",
    )
    seen = JobObservation(
        attempt_id=proposal.attempt_id, status=JobStatus.FAILED, failure_reason=error
    )
    with db.writer(warehouse_path, who="rebalance start") as con:
        db.run(
            con,
            "rebalance.mark_started",
            attempt_id=proposal.attempt_id,
            sling_before=None,
            state="running",
            started_at=now,
        )
        _close(con, action, seen, None, now)
