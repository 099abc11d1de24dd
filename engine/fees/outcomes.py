"""What a fee change actually did: its revenue against a counterfactual trend (pure).

The audit's 557 fee-change outcomes all read 0 because nothing was measured and 0 was the
default. Here a change yields `measured` with a number and the method behind it,
`insufficient_data` with the reason, or `pending` while its window is open;
`actual_benefit_msat` is None unless measured.

Method. For a change at t on channel c with window W, compare c's settled traffic in
[t − W, t) and [t, t + W) (each side cut short at c's neighbouring changes, so one fee's effect is
not booked to another). The counterfactual for c after t is its own before-rate times a trend:
    rate       = after_c − before_c × trend                                 (per hour)
    actual     = rate × W hours
Multiplicative rather than additive because channels differ in size by orders of magnitude: a
node-wide +30 % moves a big channel by more msat than a small one, and an additive control mean
would book that difference as the fee's effect.

The trend comes from the first usable group, most trustworthy first (`OutcomeMethod`):
  1. did_unchanged   the node's channels whose fee did not change inside the compared windows
                     (classic difference in differences);
  2. did_node_trend  all the node's other channels, changed ones included. A fees loop that
                     reprices every channel every day leaves group 1 empty; this trend then also
                     carries the other channels' own fee effects, so the estimate reads "better or
                     worse than the node's average move" and is biased toward 0 when most fees
                     moved the same way;
  3. before_after    trend 1: the channel against its own past, with no correction for
                     node-wide swings (weekday, on-chain spikes). The least trustworthy.
A group is usable when its before side settled MIN_TREND_FORWARDS forwards with revenue: the
ratio of two smaller counts is mostly noise. A channel with no settled forward on either side
stays insufficient_data whatever the method: there is nothing to measure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from engine.fees.frames import (
    FEE_CHANGE_REQUIRED,
    FEE_CHANGE_SCHEMA,
    FORWARD_REQUIRED,
    FORWARD_SCHEMA,
    conform,
)
from models.fees import FeeOutcome, OutcomeMethod, OutcomeStatus, WindowTotals

MIN_WINDOW_SHARE = 0.25  # each side must cover a quarter of W, or the rate is mostly noise
MIN_TREND_FORWARDS = 3  # settled forwards a trend group needs before the change
_METRICS = ("revenue_msat", "volume_msat", "forwards")


def estimate_fee_outcome(
    *,
    scid: str,
    changed_at: datetime,
    forwards: pl.DataFrame,
    changes: pl.DataFrame,
    window_s: int,
    now: datetime,
    channel_scids: Iterable[str] | None = None,
    predicted_benefit_msat: int | None = None,
    change_id: str | None = None,
) -> FeeOutcome:
    """The outcome of one change, from one node's forwards and fee change log.

    `channel_scids` lists the node's channels (control candidates); without it, every channel
    seen in `forwards` or `changes` is a candidate, which misses controls that had no traffic
    at all (harmless: they carry no trend information either).
    """
    if changed_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("estimate_fee_outcome needs timezone-aware changed_at and now (UTC)")
    fwd = conform(forwards, FORWARD_SCHEMA, FORWARD_REQUIRED, "forwards").filter(
        (pl.col("status") == "settled") & pl.col("resolved_at").is_not_null()
    )
    log = conform(changes, FEE_CHANGE_SCHEMA, FEE_CHANGE_REQUIRED, "fee_changes")
    window = timedelta(seconds=window_s)
    own = log.filter(pl.col("scid") == scid)["changed_at"]
    before_start = max([changed_at - window, *(t for t in own if t < changed_at)])
    after_end = min([changed_at + window, *(t for t in own if t > changed_at)])

    def outcome(status: OutcomeStatus, detail: str, **measured: Any) -> FeeOutcome:
        return FeeOutcome(
            scid=scid,
            changed_at=changed_at,
            window_s=window_s,
            status=status,
            detail=detail,
            change_id=change_id,
            predicted_benefit_msat=predicted_benefit_msat,
            window_start=before_start,
            window_end=after_end,
            **measured,
        )

    if now < after_end:
        return outcome(OutcomeStatus.PENDING, f"window closes at {after_end.isoformat()}")
    window_h = window_s / 3600
    before_h = (changed_at - before_start).total_seconds() / 3600
    after_h = (after_end - changed_at).total_seconds() / 3600
    if min(before_h, after_h) < MIN_WINDOW_SHARE * window_h:
        return outcome(
            OutcomeStatus.INSUFFICIENT_DATA,
            f"another fee change on {scid} cut the window to {before_h:.1f} h before / "
            f"{after_h:.1f} h after (need {MIN_WINDOW_SHARE * window_h:.1f} h each side)",
        )
    treated_before = _totals(fwd, {scid}, before_start, changed_at)
    treated_after = _totals(fwd, {scid}, changed_at, after_end)
    if treated_before.forwards == 0 and treated_after.forwards == 0:
        return outcome(
            OutcomeStatus.INSUFFICIENT_DATA,
            f"no settled forward out of {scid} in {before_h:.1f} h before or {after_h:.1f} h after",
            treated_before=treated_before,
            treated_after=treated_after,
        )

    candidates = set(channel_scids) if channel_scids is not None else _seen_channels(fwd, log)
    others = candidates - {scid}
    # A control's fee must hold over exactly the traffic compared: a change at before_start
    # (the same cycle as this channel's previous change) leaves it constant inside.
    moved = set(
        log.filter((pl.col("changed_at") > before_start) & (pl.col("changed_at") < after_end))[
            "scid"
        ]
    )
    groups = [(OutcomeMethod.DID_UNCHANGED, others - moved)]
    if moved & others:
        groups.append((OutcomeMethod.DID_NODE_TREND, others))
    skipped = []
    method, controls = OutcomeMethod.BEFORE_AFTER, ()
    control_before = control_after = None
    for kind, scids in groups:
        if not scids:
            skipped.append(f"{kind}: no such channel")
            continue
        before = _totals(fwd, scids, before_start, changed_at)
        if before.forwards < MIN_TREND_FORWARDS or before.revenue_msat == 0:
            skipped.append(
                f"{kind}: {len(scids)} channel(s) settled {before.forwards} forward(s) "
                f"({before.revenue_msat} msat) before, need {MIN_TREND_FORWARDS} with revenue"
            )
            continue
        method, controls = kind, tuple(sorted(scids))
        control_before, control_after = before, _totals(fwd, scids, changed_at, after_end)
        break
    did = {
        metric: _rate_per_hour(metric, treated_before, treated_after, control_before, control_after)
        for metric in _METRICS
    }
    actual_msat = round(did["revenue_msat"] * window_h)
    error_msat = None if predicted_benefit_msat is None else actual_msat - predicted_benefit_msat
    trend = _trend("revenue_msat", control_before, control_after)
    if controls:
        detail = f"{method}: own rate × trend {trend:.3f} of {len(controls)} channel(s)"
    else:
        detail = f"{method}: own rate before vs after, trend 1 (no usable control group)"
    if skipped:
        detail += f"; skipped {'; '.join(skipped)}"
    return outcome(
        OutcomeStatus.MEASURED,
        detail,
        method=method,
        trend=trend,
        control_scids=controls,
        treated_before=treated_before,
        treated_after=treated_after,
        control_before=control_before,
        control_after=control_after,
        did_revenue_msat_per_h=did["revenue_msat"],
        did_volume_msat_per_h=did["volume_msat"],
        did_forwards_per_h=did["forwards"],
        actual_benefit_msat=actual_msat,
        prediction_error_msat=error_msat,
    )


def measure_fee_changes(
    changes: pl.DataFrame,
    forwards: pl.DataFrame,
    *,
    window_s: int,
    now: datetime,
    channel_scids: Iterable[str] | None = None,
) -> list[FeeOutcome]:
    """Outcomes of every logged change (pending ones included; the flow stores the others)."""
    log = conform(changes, FEE_CHANGE_SCHEMA, FEE_CHANGE_REQUIRED, "fee_changes").sort("changed_at")
    scids = None if channel_scids is None else tuple(channel_scids)
    return [
        estimate_fee_outcome(
            scid=row["scid"],
            changed_at=row["changed_at"],
            forwards=forwards,
            changes=log,
            window_s=window_s,
            now=now,
            channel_scids=scids,
            predicted_benefit_msat=row["predicted_benefit_msat"],
            change_id=row["change_id"],
        )
        for row in log.iter_rows(named=True)
    ]


def _trend(metric: str, before: WindowTotals | None, after: WindowTotals | None) -> float:
    """after/before per hour of the control group; 1 without one (before_after)."""
    if before is None or after is None:
        return 1.0
    baseline = before.per_hour(metric)
    return after.per_hour(metric) / baseline if baseline > 0 else 1.0


def _rate_per_hour(
    metric: str,
    treated_before: WindowTotals,
    treated_after: WindowTotals,
    control_before: WindowTotals | None,
    control_after: WindowTotals | None,
) -> float:
    """after_c − before_c × trend, per hour."""
    trend = _trend(metric, control_before, control_after)
    return treated_after.per_hour(metric) - treated_before.per_hour(metric) * trend


def _seen_channels(fwd: pl.DataFrame, log: pl.DataFrame) -> set[str]:
    seen = set(fwd["out_channel"].drop_nulls()) | set(log["scid"].drop_nulls())
    return {str(scid) for scid in seen}


def _totals(fwd: pl.DataFrame, scids: set[str], start: datetime, end: datetime) -> WindowTotals:
    part = fwd.filter(
        pl.col("out_channel").is_in(list(scids))
        & (pl.col("resolved_at") >= start)
        & (pl.col("resolved_at") < end)
    )
    return WindowTotals(
        hours=(end - start).total_seconds() / 3600,
        forwards=part.height,
        revenue_msat=int(part["fee_msat"].fill_null(0).sum()),
        volume_msat=int(part["out_msat"].fill_null(0).sum()),
    )
