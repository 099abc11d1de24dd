"""Fee tasks: read a node's fee inputs, record decisions, apply changes with setchannel."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from prefect import task
from pydantic import ValidationError

from engine.fees.plan import FeeInputs
from engine.fees.reconcile import reconcile
from models.cln import PeerChannel, field_filter
from models.fees import DEFAULT_TUNING, FeeDecision, FeePolicy
from models.settings import NodeConfig, RpcConfig
from tasks.gateway import NodeError, NodeGateway, NodeUnreachable, RuneRejected
from warehouse import db

log = logging.getLogger("hiveops.fees")

LOOKBACK_DAYS = 30
STALE_SNAPSHOT_S = 6 * 3600


class NoFreshSnapshot(RuntimeError):
    pass


def _frame(con, name: str, **params: object) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return db.fetch_frame(con, name, **params)


@task(name="known-node-ids")
def known_node_ids(warehouse_path: Path) -> dict[str, str]:
    """Configured name -> node id, as collect recorded them."""
    with db.writer(warehouse_path, who="fees read") as con:
        return {r["name"]: r["node_id"] for r in db.fetch_all(con, "common.node_ids")}


@task(name="reconcile-fee-changes")
def reconcile_fee_changes(
    warehouse_path: Path, node: NodeConfig, rpc: RpcConfig, node_id: str
) -> dict[str, str]:
    """Settle changes a previous run left pending against the node's fees now, before this run
    decides anything: a change that reached the node counts as applied (so hysteresis holds and
    it is not made again), one that did not counts as failed."""
    with db.writer(warehouse_path, who="fees reconcile") as con:
        pending = db.fetch_all(con, "fees.pending_changes", node_id=node_id)
    if not pending:
        return {}
    channels = NodeGateway(node, rpc).call_parsed(
        "listpeerchannels",
        lambda r: [PeerChannel.model_validate(c) for c in r["channels"]],
        filter={"channels": [field_filter(PeerChannel)]},
    )
    node_fees = {
        c.short_channel_id: (c.fee_base_msat or 0, c.fee_proportional_millionths or 0)
        for c in channels
        if c.short_channel_id
    }
    settled = reconcile(pending, node_fees)
    with db.writer(warehouse_path, who="fees reconcile") as con:
        for s in settled:
            db.run(con, "fees.settle_change", status=s.status, error=s.error, change_id=s.change_id)
    for s in settled:
        log.warning(
            "%s: fee change %s on %s left pending by an earlier run: %s%s",
            node.name,
            s.change_id[:12],
            s.scid,
            s.status,
            f" ({s.error})" if s.error else "",
        )
    return {s.scid: s.status for s in settled}


@task(name="load-fee-inputs", retries=2, retry_delay_seconds=2)
def load_fee_inputs(warehouse_path: Path, node_id: str, now: datetime) -> FeeInputs:
    refill_since = now - timedelta(seconds=DEFAULT_TUNING.refill_window_s)
    with db.writer(warehouse_path, who="fees read") as con:
        # Fleet membership has one source of truth (the fleet loop's members, or collect's
        # is_fleet before its first run); either way a fleet channel never gets a floor.
        member_ids = [r["node_id"] for r in db.fetch_all(con, "fleet.member_ids")]
        channels = _frame(con, "fees.channels", node_id=node_id).with_columns(
            (pl.col("is_fleet") | pl.col("peer_id").is_in(member_ids)).alias("is_fleet")
        )
        inputs = FeeInputs(
            node_id=node_id,
            channels=channels,
            first_seen=_frame(con, "fees.first_seen", node_id=node_id),
            forwards=_frame(
                con, "fees.forwards", node_id=node_id, since=now - timedelta(days=LOOKBACK_DAYS)
            ),
            changes=_frame(con, "fees.changes", node_id=node_id),
            peer_policies=_frame(con, "fees.peer_policies", node_id=node_id),
            policies=_policies(db.fetch_all(con, "fees.policies")),
            refill_quotes=_frame(con, "fees.refill_quotes", node_id=node_id, since=refill_since),
            demand=_frame(con, "fees.refill_demand", node_id=node_id, since=refill_since),
        )
    if channels.is_empty():
        raise NoFreshSnapshot(f"no channel snapshot for node {node_id}: run collect first")
    age_s = (now - channels["taken_at"].max()).total_seconds()  # type: ignore[operator]
    if age_s > STALE_SNAPSHOT_S:
        raise NoFreshSnapshot(
            f"latest snapshot of node {node_id} is {age_s / 3600:.1f} h old; fees decide only "
            f"on state younger than {STALE_SNAPSHOT_S // 3600} h (is collect running?)"
        )
    return inputs


class InvalidPolicy(RuntimeError):
    """A stored fee policy that fails validation (edited by hand, or from an older hiveops)."""


def _policies(rows: list[dict[str, object]]) -> tuple[FeePolicy, ...]:
    """Every stored policy, or InvalidPolicy naming the row: no fee is decided around a policy
    that cannot be read, since it may be the one that bounds this channel."""
    policies = []
    for row in rows:
        row = dict(row)
        pid = row.pop("policy_id", None)
        try:
            policies.append(FeePolicy.model_validate(row))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'policy'} = {e.get('input')!r}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise InvalidPolicy(
                f"fee policy {pid} in the warehouse is invalid ({problems}); fix it with "
                f"`hiveops policy set` or remove it with `hiveops policy delete`; no fee is "
                f"changed until then"
            ) from None
    return tuple(policies)


@task(name="record-fee-decisions", retries=2, retry_delay_seconds=2)
def record_fee_decisions(
    warehouse_path: Path, run_id: str, decisions: list[FeeDecision], dry_run: bool
) -> list[str]:
    """Store every decision, and a pending change for each one to apply: written before acting,
    so a crash between setchannel and its record still leaves a trace."""
    rows, changes, change_ids = [], [], []
    for d in decisions:
        decision_id = uuid.uuid4().hex
        rows.append(
            {
                **d.model_dump(mode="python", exclude={"inputs"}),
                "decision_id": decision_id,
                "run_id": run_id,
                "dry_run": dry_run,
                "policy_kind": str(d.policy_kind),
                "reason": str(d.reason),
                "inputs": json.dumps(d.inputs, default=str),
            }
        )
        if d.apply and not dry_run:
            change_ids.append(decision_id)
            changes.append(
                {
                    "change_id": decision_id,
                    "node_id": d.node_id,
                    "scid": d.scid,
                    "peer_id": d.peer_id,
                    "changed_at": d.decided_at,
                    "old_base_fee_msat": d.old_base_fee_msat,
                    "old_fee_ppm": d.old_fee_ppm,
                    "new_base_fee_msat": d.new_base_fee_msat,
                    "new_fee_ppm": d.new_fee_ppm,
                    "new_ppm": d.new_fee_ppm,
                    "reason": str(d.reason),
                    "predicted_benefit_msat": d.predicted_benefit_msat,
                    "evaluation_window_s": d.evaluation_window_s,
                    "status": "pending",
                    "error": None,
                }
            )
    with db.writer(warehouse_path, who="fees record") as con:
        con.execute("BEGIN TRANSACTION")
        if rows:
            db.stage(con, pl.DataFrame(rows, infer_schema_length=None))
            db.run(con, "fees.insert_decisions")
        if changes:
            db.stage(con, pl.DataFrame(changes, infer_schema_length=None))
            db.run(con, "fees.insert_changes")
        con.execute("COMMIT")
    return change_ids


@task(name="apply-fee-changes")
def apply_fee_changes(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    decisions: list[FeeDecision],
    change_ids: list[str],
) -> dict[str, str]:
    """setchannel for each pending change; each result is recorded as soon as it is known."""
    gw = NodeGateway(node, rpc)
    to_apply = [d for d in decisions if d.apply]
    results: dict[str, str] = {}
    refused: RuneRejected | None = None  # the rune forbids setchannel: no further calls
    for decision, change_id in zip(to_apply, change_ids, strict=True):
        status, error = "applied", None
        try:
            if refused is not None:
                raise RuneRejected(
                    refused.node,
                    refused.method,
                    "not attempted: the rune already refused this call in this run",
                    refused.code,
                )
            gw.call(
                "setchannel",
                {
                    "id": decision.scid,
                    "feebase": decision.new_base_fee_msat,
                    "feeppm": decision.new_fee_ppm,
                },
            )
        except NodeUnreachable as exc:
            # The node may have applied it before the answer was lost: the next run asks it.
            status, error = "pending", f"outcome unknown, the next run reconciles it: {exc}"
        except NodeError as exc:
            status, error = "failed", str(exc)
            refused = exc if isinstance(exc, RuneRejected) else refused
        with db.writer(warehouse_path, who="fees apply") as con:
            db.run(con, "fees.finish_change", status=status, error=error, change_id=change_id)
        results[decision.scid] = status if error is None else f"{status}: {error}"
    return results
