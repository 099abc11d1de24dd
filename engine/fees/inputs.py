"""Controller inputs from warehouse frames: FeeHistory from forwards + the fee change log, and
MarketView from competitors' gossip (pure; frames in, models out).

A fee's history is the list of periods during which the channel posted it, cut at each logged
change, with the settled forwards that resolved inside each period. The log is the source of
truth for *when* a fee changed; the fees.changes query adds changes made outside hiveops (an
operator's `setchannel`, seen between two snapshots) as rows with reason `external`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl

from engine.fees.frames import (
    FEE_CHANGE_REQUIRED,
    FEE_CHANGE_SCHEMA,
    FORWARD_REQUIRED,
    FORWARD_SCHEMA,
    PEER_POLICY_REQUIRED,
    PEER_POLICY_SCHEMA,
    conform,
)
from models.fees import DEFAULT_TUNING, FeeHistory, FeeLevelStats, FeeReason, FeeTuning, MarketView

POLICY_MAX_AGE_S = 14 * 86400  # gossip prunes channels without an update for two weeks
_REASONS = {reason.value: reason for reason in FeeReason}
EXTERNAL_REASON = "external"  # fees.changes rows for changes made outside hiveops


def build_fee_history(
    scid: str,
    forwards: pl.DataFrame,
    changes: pl.DataFrame,
    *,
    now: datetime,
    current_fee_ppm: int,
    observed_since: datetime | None = None,
    tuning: FeeTuning = DEFAULT_TUNING,
) -> FeeHistory:
    """Per-fee exposure and settled traffic of one channel over `tuning.lookback_s`.

    `observed_since` (the channel's open or first snapshot) stops a young channel from being
    credited hours it did not exist. Without any logged change the whole window is attributed to
    `current_fee_ppm`; with changes only inside the window, the time before the first one is left
    out (its fee is unknown) rather than guessed.
    """
    fwd = conform(forwards, FORWARD_SCHEMA, FORWARD_REQUIRED, "forwards")
    log = (
        conform(changes, FEE_CHANGE_SCHEMA, FEE_CHANGE_REQUIRED, "fee_changes")
        .filter((pl.col("scid") == scid) & (pl.col("changed_at") < now))
        .sort("changed_at")
    )
    start = now - timedelta(seconds=tuning.lookback_s)
    if observed_since is not None and observed_since > start:
        start = observed_since
    segments: list[tuple[datetime, int]] = []
    before = log.filter(pl.col("changed_at") <= start)
    inside = log.filter(pl.col("changed_at") > start)
    if before.height:
        segments.append((start, int(before["new_ppm"][-1])))
    elif inside.height == 0:
        segments.append((start, current_fee_ppm))
    segments += [(row["changed_at"], int(row["new_ppm"])) for row in inside.iter_rows(named=True)]

    settled = fwd.filter((pl.col("status") == "settled") & pl.col("resolved_at").is_not_null())
    outbound = settled.filter(pl.col("out_channel") == scid)
    periods: list[FeeLevelStats] = []
    ends = [segment_start for segment_start, _ in segments[1:]] + [now]
    for (segment_start, fee_ppm), segment_end in zip(segments, ends, strict=True):
        if segment_end <= segment_start:
            continue
        part = outbound.filter(
            (pl.col("resolved_at") >= segment_start) & (pl.col("resolved_at") < segment_end)
        )
        periods.append(
            FeeLevelStats(
                fee_ppm=fee_ppm,
                hours=(segment_end - segment_start).total_seconds() / 3600,
                forwards=part.height,
                revenue_msat=int(part["fee_msat"].fill_null(0).sum()),
                volume_msat=int(part["out_msat"].fill_null(0).sum()),
            )
        )

    drain_start = now - timedelta(seconds=tuning.drain_window_s)
    recent = settled.filter((pl.col("resolved_at") >= drain_start) & (pl.col("resolved_at") < now))
    out_msat = int(recent.filter(pl.col("out_channel") == scid)["out_msat"].fill_null(0).sum())
    in_msat = int(recent.filter(pl.col("in_channel") == scid)["in_msat"].fill_null(0).sum())
    last_reason = log["reason"][-1] if log.height else None
    return FeeHistory(
        scid=scid,
        levels=_by_fee(periods),
        since_change=periods[-1] if periods else None,
        net_outflow_msat=out_msat - in_msat,
        drain_window_s=tuning.drain_window_s,
        last_change_reason=_REASONS.get(last_reason) if last_reason else None,
    )


def _by_fee(periods: Iterable[FeeLevelStats]) -> tuple[FeeLevelStats, ...]:
    totals: dict[int, FeeLevelStats] = {}
    for period in periods:
        seen = totals.get(period.fee_ppm)
        if seen is None:
            totals[period.fee_ppm] = period
            continue
        totals[period.fee_ppm] = FeeLevelStats(
            fee_ppm=period.fee_ppm,
            hours=seen.hours + period.hours,
            forwards=seen.forwards + period.forwards,
            revenue_msat=seen.revenue_msat + period.revenue_msat,
            volume_msat=seen.volume_msat + period.volume_msat,
        )
    return tuple(totals[fee] for fee in sorted(totals))


def latest_change_at(changes: pl.DataFrame, scid: str, now: datetime) -> datetime | None:
    """When hiveops last changed this channel's fee (for ChannelFeeState.last_change_at).

    A change made outside hiveops (reason `external`, warehouse external_changes) is a level in
    the history but does not restart hiveops' own rate limit."""
    log = conform(changes, FEE_CHANGE_SCHEMA, FEE_CHANGE_REQUIRED, "fee_changes").filter(
        (pl.col("scid") == scid)
        & (pl.col("changed_at") <= now)
        & (pl.col("reason").fill_null("") != EXTERNAL_REASON)
    )
    latest = log["changed_at"].max()
    return latest if isinstance(latest, datetime) else None


def build_market_view(
    peer_id: str,
    policies: pl.DataFrame,
    *,
    now: datetime,
    max_age_s: int = POLICY_MAX_AGE_S,
    fleet_levels: Iterable[FeeLevelStats] = (),
) -> MarketView:
    """Competitors' current fees toward `peer_id`: latest update per (scid, direction), ours,
    inactive and stale (older than `max_age_s`) updates excluded."""
    frame = conform(policies, PEER_POLICY_SCHEMA, PEER_POLICY_REQUIRED, "peer_fee_policies")
    cutoff = int(now.timestamp()) - max_age_s
    latest = (
        frame.filter(pl.col("peer_id") == peer_id)
        .sort("last_update")
        .group_by(["scid", "direction"], maintain_order=True)
        .last()
        .filter(~pl.col("is_ours") & pl.col("active") & (pl.col("last_update") >= cutoff))
        .sort(["scid", "direction"])
    )
    return MarketView(
        peer_id=peer_id,
        competitor_fee_ppm=tuple(int(v) for v in latest["fee_ppm"]),
        competitor_base_fee_msat=tuple(int(v) for v in latest["base_fee_msat"]),
        fleet_levels=tuple(fleet_levels),
    )
