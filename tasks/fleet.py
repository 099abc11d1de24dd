"""Fleet tasks: membership, member state, health, assistance and its outcomes, contribution and
fee intelligence, read from and written to the warehouse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import polars as pl
from prefect import task

from engine.fleet.contribution import AssistMove, FleetForward
from engine.fleet.intel import merge_fee_intelligence
from engine.fleet.membership import resolve_members
from models.fleet import (
    Assistance,
    AssistanceAttempt,
    AssistanceOutcome,
    Contribution,
    FleetMember,
    MemberChannel,
    MemberHealth,
    MemberState,
)
from models.settings import NodeConfig
from warehouse import db


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


@task(name="refresh-fleet-members", retries=2, retry_delay_seconds=2)
def refresh_members(
    warehouse_path: Path, nodes: list[NodeConfig], now: datetime
) -> tuple[list[FleetMember], dict[str, str]]:
    """Rebuild `fleet_members` from the config and collect's node ids; return the members and
    a problem for each configured member without a node id."""
    with db.writer(warehouse_path, who="fleet members") as con:
        known = {r["name"]: r["node_id"] for r in db.fetch_all(con, "common.node_ids")}
        first = {
            r["node_id"]: _utc(r["first_seen_at"]) for r in db.fetch_all(con, "fleet.first_seen")
        }
        members, problems = resolve_members(nodes, known, first, now)
        con.execute("BEGIN TRANSACTION")
        db.run(con, "fleet.deactivate_members", now=now)
        if members:
            rows = [
                {
                    "node_id": m.node_id,
                    "name": m.name,
                    "is_active": True,
                    "first_seen_at": m.first_seen_at,
                    "updated_at": now,
                }
                for m in members
            ]
            db.stage(con, pl.DataFrame(rows), key=["node_id"])
            db.run(con, "fleet.upsert_members")
        con.execute("COMMIT")
    return members, problems


@task(name="load-member-states", retries=2, retry_delay_seconds=2)
def load_member_states(
    warehouse_path: Path, revenue_window_s: int, now: datetime
) -> list[MemberState]:
    since = now - timedelta(seconds=revenue_window_s)
    with db.writer(warehouse_path, who="fleet read") as con:
        nodes = db.fetch_all(con, "fleet.member_nodes", since=since)
        channels = db.fetch_all(con, "fleet.member_channels")
    by_node: dict[str, list[MemberChannel]] = {}
    for c in channels:
        by_node.setdefault(c.pop("node_id"), []).append(
            MemberChannel(**{**c, "first_seen_at": _utc(c["first_seen_at"])})
        )
    return [
        MemberState(
            node_id=n["node_id"],
            name=n["name"],
            taken_at=_utc(n["taken_at"]),
            onchain_msat=n["onchain_msat"],
            channels=tuple(by_node.get(n["node_id"], ())),
            revenue_msat=n["revenue_msat"],
            forwards_settled=n["forwards_settled"],
        )
        for n in nodes
    ]


@task(name="record-member-health", retries=2, retry_delay_seconds=2)
def record_health(warehouse_path: Path, run_id: str, healths: list[MemberHealth]) -> int:
    if not healths:
        return 0
    rows = []
    for h in healths:
        i = h.inputs
        rows.append(
            {
                **h.model_dump(mode="python", exclude={"inputs"}),
                "tier": str(h.tier),
                "needs_help": h.needs_help,
                "run_id": run_id,
                "capacity_msat": i["capacity_msat"],
                "local_msat": i["local_msat"],
                "external_capacity_msat": i["external_capacity_msat"],
                "external_outbound_msat": i["external_outbound_msat"],
                "external_inbound_msat": i["external_inbound_msat"],
                "external_peers": i["external_peers"],
                "fleet_channels": i["fleet_channels"],
                "revenue_msat": i["revenue_msat"],
                "onchain_msat": i["onchain_msat"],
                "snapshot_taken_at": datetime.fromisoformat(i["snapshot_taken_at"]),
                "inputs": json.dumps(i, default=str),
            }
        )
    with db.writer(warehouse_path, who="fleet health") as con:
        con.execute("BEGIN TRANSACTION")
        db.stage(con, pl.DataFrame(rows, infer_schema_length=None), key=["node_id", "measured_at"])
        db.run(con, "fleet.insert_health")
        db.run(con, "fleet.update_member_tiers")
        con.execute("COMMIT")
    return len(rows)


@dataclass(frozen=True)
class PendingAssistance:
    rows: list[Assistance]  # waiting for an outcome, or requested today (daily bounds)
    attempts: list[AssistanceAttempt]
    notes: dict[str, str | None]


@task(name="load-assistance", retries=2, retry_delay_seconds=2)
def load_assistance(warehouse_path: Path, now: datetime) -> PendingAssistance:
    day_start = datetime.combine(now.date(), time(0), tzinfo=UTC)
    with db.writer(warehouse_path, who="fleet read") as con:
        rows = db.fetch_all(con, "fleet.assistance_pending", day_start=day_start)
        attempts = db.fetch_all(con, "fleet.assistance_attempts")
    notes = {r["assistance_id"]: r.pop("decision_note") for r in rows}
    return PendingAssistance(
        rows=[Assistance(**{**r, "requested_at": _utc(r["requested_at"])}) for r in rows],
        attempts=[AssistanceAttempt(**a) for a in attempts],
        notes=notes,
    )


@task(name="record-assistance", retries=2, retry_delay_seconds=2)
def record_assistance(
    warehouse_path: Path,
    run_id: str,
    plans: list[Assistance],
    outcomes: list[AssistanceOutcome],
) -> int:
    """New actions and outcomes in one transaction: an outcome never exists without its row
    being closed, and a `not_possible` row never exists without its outcome."""
    with db.writer(warehouse_path, who="fleet assistance") as con:
        con.execute("BEGIN TRANSACTION")
        if plans:
            rows = [
                {**p.model_dump(mode="json", exclude={"rebalance_skip"}), "run_id": run_id}
                for p in plans
            ]
            frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
                pl.col("requested_at").str.to_datetime(time_zone="UTC")
            )
            db.stage(con, frame, key=["assistance_id"])
            db.run(con, "fleet.insert_assistance")
        if outcomes:
            frame = pl.DataFrame(
                [o.model_dump(mode="json") for o in outcomes], infer_schema_length=None
            ).with_columns(pl.col("closed_at").str.to_datetime(time_zone="UTC"))
            db.stage(con, frame, key=["assistance_id"])
            db.run(con, "fleet.insert_outcomes")
            db.run(con, "fleet.close_assistance")
        con.execute("COMMIT")
    return len(plans) + len(outcomes)


@dataclass(frozen=True)
class ContributionInputs:
    cycles: list[datetime]
    snapshots: list[tuple[str, datetime]]
    sightings: list[tuple[str, datetime]]
    forwards: list[FleetForward]
    moves: list[AssistMove]


@task(name="load-contribution-inputs", retries=2, retry_delay_seconds=2)
def load_contribution_inputs(
    warehouse_path: Path, window_s: int, now: datetime
) -> ContributionInputs:
    since = now - timedelta(seconds=window_s)
    with db.writer(warehouse_path, who="fleet read") as con:
        cycles = db.fetch_all(con, "fleet.collect_cycles", since=since, now=now)
        snapshots = db.fetch_all(con, "fleet.member_snapshots", since=since)
        sightings = db.fetch_all(con, "fleet.member_sightings", since=since)
        forwards = db.fetch_all(con, "fleet.fleet_forwards", since=since)
        moved = db.fetch_all(con, "fleet.assist_moved", since=since)
    return ContributionInputs(
        cycles=[_utc(r["started_at"]) for r in cycles],  # type: ignore[misc]
        snapshots=[(r["node_id"], _utc(r["taken_at"])) for r in snapshots],  # type: ignore[misc]
        sightings=[(r["peer_id"], _utc(r["taken_at"])) for r in sightings],  # type: ignore[misc]
        forwards=[FleetForward(**r) for r in forwards],
        moves=[
            AssistMove(
                member_id=r["node_id"], helper_id=r["helper_node_id"], moved_msat=r["moved_msat"]
            )
            for r in moved
        ],
    )


@task(name="record-contribution", retries=2, retry_delay_seconds=2)
def record_contribution(warehouse_path: Path, run_id: str, rows: list[Contribution]) -> int:
    if not rows:
        return 0
    frame = pl.DataFrame(
        [{**c.model_dump(mode="python"), "run_id": run_id} for c in rows],
        infer_schema_length=None,
    )
    with db.writer(warehouse_path, who="fleet contribution") as con:
        db.stage(con, frame, key=["node_id", "measured_at"])
        db.run(con, "fleet.insert_contribution")
    return frame.height


@task(name="update-fee-intelligence", retries=2, retry_delay_seconds=2)
def update_fee_intelligence(warehouse_path: Path, member_ids: list[str], now: datetime) -> int:
    """Merge every member's competitor observations into one view per destination peer."""
    with db.writer(warehouse_path, who="fleet fee intel") as con:
        policies = db.fetch_frame(con, "fleet.peer_policies")
        if policies.is_empty():
            return 0
        merged = merge_fee_intelligence(policies, member_ids, now)
        if merged.is_empty():
            return 0
        db.stage(con, merged, key=["peer_id"])
        db.run(con, "fleet.insert_fee_intel")
    return merged.height
