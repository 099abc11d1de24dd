"""What a finished rebalance earned back on the liquidity it moved (pure).

The audit's rebalance outcomes were the only ones "measured" (all negative, avg −2,707 sat),
and nothing tied them to the prediction that justified the spend. Here the measure mirrors the
EV gate's own model so the prediction error means something: outbound forwards on the
destination in [finished_at, finished_at + window) are served first by the liquidity it already
had (`local_before_msat`), and only the volume beyond that, up to the moved amount, counts as
the rebalance's; a forward straddling either boundary counts pro rata. Revenue minus the fee
paid is the actual benefit. Without `local_before_msat` every outbound sat counts (an upper
bound, said so in the detail). Inflow refilling the channel in the window is ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from engine.rebalance.classify import settled_in_window
from models.fees import OutcomeStatus
from models.rebalance import MSAT_PER_SAT, RebalanceOutcome


def measure_rebalance_outcome(
    *,
    attempt_id: str,
    dest_scid: str,
    moved_msat: int,
    fee_paid_msat: int,
    finished_at: datetime,
    forwards: pl.DataFrame,
    window_s: int,
    now: datetime,
    predicted_benefit_msat: int | None = None,
    local_before_msat: int | None = None,
    data_until: datetime | None = None,
) -> RebalanceOutcome:
    """The outcome of one finished rebalance; `data_until` is how far forwards were collected
    (the collect loop's last successful run), so a stalled collect is not read as no revenue."""
    if finished_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("measure_rebalance_outcome needs timezone-aware finished_at and now")
    end = finished_at + timedelta(seconds=window_s)

    def outcome(status: OutcomeStatus, detail: str, **measured: int | None) -> RebalanceOutcome:
        return RebalanceOutcome(
            attempt_id=attempt_id,
            dest_scid=dest_scid,
            finished_at=finished_at,
            window_s=window_s,
            status=status,
            detail=detail,
            moved_msat=moved_msat,
            fee_paid_msat=fee_paid_msat,
            predicted_benefit_msat=predicted_benefit_msat,
            **measured,
        )

    if moved_msat <= 0:
        return outcome(
            OutcomeStatus.INSUFFICIENT_DATA,
            "nothing was moved: no liquidity to attribute revenue to (any fee is in the ledger)",
        )
    if now < end:
        return outcome(OutcomeStatus.PENDING, f"window closes at {end.isoformat()}")
    if data_until is not None and data_until < end:
        return outcome(
            OutcomeStatus.INSUFFICIENT_DATA,
            f"forwards collected only up to {data_until.isoformat()}, window ends "
            f"{end.isoformat()}",
        )
    outbound = (
        settled_in_window(forwards, finished_at, end)
        .filter(pl.col("out_channel") == dest_scid)
        .sort("resolved_at")
    )
    skip_msat = local_before_msat or 0
    revenue = routed = 0
    for out_msat, fee_msat in outbound.select(
        pl.col("out_msat").fill_null(0), pl.col("fee_msat").fill_null(0)
    ).iter_rows():
        if out_msat <= 0:
            continue
        served_before = min(out_msat, skip_msat)
        skip_msat -= served_before
        counted = min(out_msat - served_before, moved_msat - routed)
        if counted <= 0:
            if routed >= moved_msat:
                break
            continue
        routed += counted
        revenue += fee_msat * counted // out_msat
    actual = revenue - fee_paid_msat
    error = None if predicted_benefit_msat is None else actual - predicted_benefit_msat
    basis = (
        "every outbound sat counted (local_before unknown: an upper bound)"
        if local_before_msat is None
        else f"after {local_before_msat // MSAT_PER_SAT} sat of pre-existing liquidity"
    )
    return outcome(
        OutcomeStatus.MEASURED,
        f"{routed // MSAT_PER_SAT} of {moved_msat // MSAT_PER_SAT} sat moved were routed out in "
        f"{window_s / 86_400:g} d, {basis}; earned {revenue / MSAT_PER_SAT:g} sat, paid "
        f"{fee_paid_msat / MSAT_PER_SAT:g} sat",
        revenue_msat=revenue,
        routed_msat=routed,
        actual_benefit_msat=actual,
        prediction_error_msat=error,
    )
