"""sling over the node gateway: start one-chunk jobs, read their result, stop what we own.

Only plain functions (called from the rebalance tasks): every call goes through NodeGateway, so
transport errors are retried and reported with the node, method and code.
"""

from __future__ import annotations

from typing import Any

from engine.rebalance.sling_state import SlingTotals, job_state
from models.rebalance import RebalanceProposal
from tasks.gateway import NodeError, NodeGateway


def totals(gw: NodeGateway, scid: str) -> SlingTotals:
    detail = gw.call("sling-stats", {"scid": scid, "json": True})
    return SlingTotals.from_detail(detail if isinstance(detail, dict) else None)


def states(gw: NodeGateway) -> dict[str, str | None]:
    """scid -> the first task's state, for every channel sling has stats or a job for."""
    raw: Any = gw.call("sling-stats", {"json": True})
    rows = raw if isinstance(raw, list) else raw.get("result", []) if isinstance(raw, dict) else []
    return {str(r.get("scid")): job_state(r.get("status")) for r in rows if isinstance(r, dict)}


def jobs(gw: NodeGateway) -> dict[str, dict[str, Any]]:
    """scid -> job settings; a job with `onceamount_msat` is a sling-once."""
    raw = gw.call("sling-jobsettings", {})
    return {str(k): v for k, v in raw.items() if isinstance(v, dict)}


def start_once(gw: NodeGateway, proposal: RebalanceProposal) -> None:
    """`proposal.chunks` chunks of `chunk_sat` (onceamount = the whole amount): the reservation
    is amount × maxppm, and sling-once stops when onceamount is moved, so it bounds the spend."""
    gw.call(
        "sling-once",
        {
            "scid": proposal.dest_scid,
            "direction": proposal.direction,
            "amount": proposal.chunk_sat,
            "onceamount": proposal.amount_sat,
            "maxppm": proposal.maxppm,
            "candidates": list(proposal.candidates),
            "depleteuptopercent": proposal.depleteuptopercent,
            "depleteuptoamount": proposal.depleteuptoamount_sat,
        },
        idempotent=False,  # a retry after a lost answer could start a second job
    )


def stop_and_delete(gw: NodeGateway, scid: str) -> None:
    """Stop the job and forget its settings; its stats stay (they are our baseline)."""
    gw.call("sling-stop", {"scid": scid})
    try:
        gw.call("sling-deletejob", {"job": scid})
    except NodeError as exc:
        if "not found" not in str(exc).lower():
            raise
