"""Warehouse rows for the rebalance loop's decisions (pure): one shape per table, in one place."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from models.budget import BudgetLedger, Reservation
from models.rebalance import AttemptRecord, RebalanceChannel, RebalanceProposal, Skip


def _json(value: object) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def attempt_row(
    proposal: RebalanceProposal,
    *,
    run_id: str,
    dry_run: bool,
    assistance_id: str | None,
) -> dict[str, Any]:
    return {
        "attempt_id": proposal.attempt_id,
        "run_id": run_id,
        "node_id": proposal.node_id,
        "dest_scid": proposal.dest_scid,
        "purpose": "fleet_assist" if assistance_id else "ev",
        "assistance_id": assistance_id,
        "amount_msat": proposal.amount_msat,
        "maxppm": proposal.maxppm,
        "max_cost_msat": proposal.max_cost_msat,
        "candidates": _json(list(proposal.candidates)),
        "outppm": proposal.outppm,
        "expected_revenue_msat": proposal.expected_revenue_msat,
        "opportunity_cost_msat": proposal.opportunity_cost_msat,
        "predicted_benefit_msat": proposal.predicted_benefit_msat,
        "exempt_from_ev": proposal.exempt_from_ev,
        "horizon_s": proposal.horizon_s,
        "dry_run": dry_run,
        "proposed_at": proposal.proposed_at,
        "started_at": None,
        "finished_at": proposal.proposed_at if dry_run else None,
        "state": "dry_run" if dry_run else "reserved",
        "fee_msat": None,
        "fee_is_estimate": False,
        "moved_msat": 0,
        "source_scid": None,
        "failure_reason": None,
        "sling_before": None,
        "inputs": _json(proposal.inputs),
        "chunk_msat": proposal.chunk_msat,
    }


def reservation_row(reservation: Reservation) -> dict[str, Any]:
    return {
        "attempt_id": reservation.attempt_id,
        "node_id": reservation.node_id,
        "scid": reservation.scid,
        "max_fee_msat": reservation.max_fee_msat,
        "reserved_at": reservation.reserved_at,
        "closed_at": None,
        "closed_as": None,
        "fee_msat": None,
        "fee_is_estimate": False,
        "close_reason": None,
    }


def skip_row(skip: Skip, *, run_id: str, node_id: str, at: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "node_id": node_id,
        "scid": skip.scid,
        "decided_at": at,
        "reason": str(skip.reason),
        "detail": skip.detail,
        "inputs": _json(skip.inputs),
    }


def ledger_row(ledger: BudgetLedger, at: datetime) -> dict[str, Any]:
    return {
        "node_id": ledger.node_id,
        "day": ledger.day,
        "budget_msat": ledger.budget_msat,
        "fixed_budget_msat": ledger.fixed_budget_msat,
        "earnings_budget_msat": ledger.earnings_budget_msat,
        "earned_msat": ledger.earned_msat,
        "trailing_earned_msat": ledger.trailing_earned_msat,
        "rebalance_spent_msat": ledger.rebalance_spent_msat,
        "onchain_spent_msat": ledger.onchain_spent_msat,
        "reserved_msat": ledger.reserved_msat,
        "updated_at": at,
    }


def channel_from_row(row: dict[str, Any]) -> RebalanceChannel:
    return RebalanceChannel(
        scid=row["scid"],
        peer_id=row["peer_id"],
        is_fleet=bool(row["is_fleet"]),
        capacity_msat=int(row["capacity_msat"]),
        local_msat=int(row["local_msat"]),
        fee_ppm=int(row["fee_ppm"]),
        base_fee_msat=int(row["base_fee_msat"]),
        usable=bool(row["usable"]),
        fee_changed_at=None
        if row.get("fee_changed_at") is None
        else row["fee_changed_at"].astimezone(UTC),
        fee_before_change_ppm=row.get("fee_before_change_ppm"),
    )


def attempt_from_row(row: dict[str, Any]) -> AttemptRecord:
    return AttemptRecord(
        attempt_id=row["attempt_id"],
        dest_scid=row["dest_scid"],
        finished_at=row["finished_at"],
        succeeded=bool(row["succeeded"]),
        source_scid=row["source_scid"],
        moved_msat=int(row["moved_msat"] or 0),
        fee_msat=int(row["fee_msat"] or 0),
        failure_reason=row["failure_reason"],
        maxppm=row.get("maxppm"),
        amount_msat=row.get("amount_msat"),
        chunk_msat=row.get("chunk_msat"),
    )
