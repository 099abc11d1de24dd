"""Channel roles from recent settled flow and current balance (pure).

A sink drains outbound (more leaves through it than arrives): it is the channel a pull refills.
A source accumulates outbound (net inflow) and is where a pull takes liquidity from. Flow decides
first because it says where liquidity is *going*; balance decides only when the flow is too small
to say anything (below `flow_min_share` of capacity over the window), so a channel emptied long
ago and silent since is still seen as a sink, and the EV gate, not the label, decides whether
refilling it pays.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl

from engine.fees.frames import FORWARD_REQUIRED, FORWARD_SCHEMA, conform
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    MSAT_PER_SAT,
    PPM,
    ChannelClass,
    DemandSample,
    FlowRole,
    RebalanceChannel,
    RebalanceTuning,
)


def settled_in_window(forwards: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Settled forwards resolved in [start, end), conformed to the declared forwards schema."""
    return conform(forwards, FORWARD_SCHEMA, FORWARD_REQUIRED, "forwards").filter(
        (pl.col("status") == "settled")
        & pl.col("resolved_at").is_not_null()
        & (pl.col("resolved_at") >= start)
        & (pl.col("resolved_at") < end)
    )


def classify_channels(
    channels: Iterable[RebalanceChannel],
    forwards: pl.DataFrame,
    now: datetime,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> dict[str, ChannelClass]:
    """Role of every channel over the last `tuning.flow_window_s`, keyed by scid."""
    if now.tzinfo is None:
        raise ValueError("classify_channels needs a timezone-aware `now` (UTC)")
    window = settled_in_window(forwards, now - timedelta(seconds=tuning.flow_window_s), now)
    outbound = {
        row["scid"]: row
        for row in window.filter(pl.col("out_channel").is_not_null())
        .group_by(pl.col("out_channel").alias("scid"))
        .agg(
            pl.len().alias("forwards"),
            pl.col("out_msat").fill_null(0).sum().alias("out_msat"),
            pl.col("fee_msat").fill_null(0).sum().alias("fee_msat"),
        )
        .iter_rows(named=True)
    }
    missed = _missed(forwards, now - timedelta(seconds=tuning.flow_window_s), now)
    channels = list(channels)
    price_since = {
        channel.scid: max(
            now - timedelta(seconds=tuning.price_window_s),
            channel.fee_changed_at or now - timedelta(seconds=tuning.price_window_s),
        )
        for channel in channels
    }
    recent = _recent_prices(window, price_since, tuning)
    inbound = {
        row["scid"]: row
        for row in window.filter(pl.col("in_channel").is_not_null())
        .group_by(pl.col("in_channel").alias("scid"))
        .agg(
            pl.len().alias("forwards"),
            pl.col("in_msat").fill_null(0).sum().alias("in_msat"),
            pl.col("fee_msat").fill_null(0).sum().alias("fee_msat"),
        )
        .iter_rows(named=True)
    }
    holding = {c.scid for c in channels if c.local_share > tuning.sink_max_local_share and c.usable}
    legs: dict[str, dict[str, tuple[int, int, int]]] = {}
    for row in (
        window.filter(pl.col("in_channel").is_not_null() & pl.col("out_channel").is_not_null())
        .group_by("in_channel", "out_channel")
        .agg(
            pl.len().alias("forwards"),
            pl.col("in_msat").fill_null(0).sum().alias("in_msat"),
            pl.col("fee_msat").fill_null(0).sum().alias("fee_msat"),
        )
        .iter_rows(named=True)
    ):
        if row["out_channel"] not in holding:
            continue
        legs.setdefault(row["in_channel"], {})[row["out_channel"]] = (
            int(row["forwards"]),
            int(row["in_msat"]),
            int(row["fee_msat"]),
        )
    classes: dict[str, ChannelClass] = {}
    for channel in channels:
        out = outbound.get(channel.scid, {})
        out_msat = int(out.get("out_msat", 0))
        into = inbound.get(channel.scid, {})
        in_msat = int(into.get("in_msat", 0))
        role, detail = _role(channel, out_msat - in_msat, tuning)
        classes[channel.scid] = ChannelClass(
            scid=channel.scid,
            peer_id=channel.peer_id,
            is_fleet=channel.is_fleet,
            role=role,
            local_share=channel.local_share,
            window_s=tuning.flow_window_s,
            out_forwards=int(out.get("forwards", 0)),
            out_msat=out_msat,
            in_msat=in_msat,
            out_fee_msat=int(out.get("fee_msat", 0)),
            in_forwards=int(into.get("forwards", 0)),
            in_fee_msat=int(into.get("fee_msat", 0)),
            in_by_out=legs.get(channel.scid, {}),
            missed_forwards=missed.get(channel.scid, (0, 0))[0],
            missed_msat=missed.get(channel.scid, (0, 0))[1],
            recent_fee_ppm=recent.get(channel.scid),
            repriced=price_since[channel.scid] > now - timedelta(seconds=tuning.price_window_s),
            demand_since_rise=_demand_since_rise(channel, window, forwards, now, tuning),
            detail=detail,
        )
    return classes


def _demand_since_rise(
    channel: RebalanceChannel,
    window: pl.DataFrame,
    forwards: pl.DataFrame,
    now: datetime,
    tuning: RebalanceTuning,
) -> DemandSample | None:
    """What asked to leave through `channel` since its fee was raised inside the flow window.

    Demand seen at a lower fee overstates demand at the posted one: after the fees loop priced a
    sink at its refill cost, the busy scenario's sinks kept 14 days of cheap demand in their
    estimate, were refilled at 170-550 ppm, and the liquidity sat unsold at the new price.
    """
    rise_at = channel.fee_changed_at
    if not channel.fee_raised or rise_at is None:
        return None
    if rise_at <= now - timedelta(seconds=tuning.flow_window_s):
        return None
    served = window.filter(
        (pl.col("out_channel") == channel.scid) & (pl.col("resolved_at") >= rise_at)
    )
    missed = _missed(forwards, rise_at, now).get(channel.scid, (0, 0))
    return DemandSample(
        asked_forwards=served.height + missed[0],
        asked_msat=int(served["out_msat"].fill_null(0).sum()) + missed[1],
        window_s=max(1, int((now - rise_at).total_seconds())),
    )


def _recent_prices(
    window: pl.DataFrame, since: dict[str, datetime], tuning: RebalanceTuning
) -> dict[str, int]:
    """scid -> fee ppm paid by its outbound forwards since `since[scid]`, where enough did.

    `since` starts at the channel's last fee change: forwards at an old fee say nothing about
    what demand pays at the posted one (a sink whose fee was just raised to its refill cost
    would otherwise be priced at its old fee for days, and never refilled).
    """
    starts = pl.DataFrame(
        {"scid": list(since), "since": list(since.values())},
        schema={"scid": pl.String, "since": window.schema["resolved_at"]},
    )
    recent = (
        window.filter(pl.col("out_channel").is_not_null())
        .join(starts, left_on="out_channel", right_on="scid", how="inner")
        .filter(pl.col("resolved_at") >= pl.col("since"))
        .group_by(pl.col("out_channel").alias("scid"))
        .agg(
            pl.len().alias("n"),
            pl.col("out_msat").fill_null(0).sum().alias("out_msat"),
            pl.col("fee_msat").fill_null(0).sum().alias("fee_msat"),
        )
        .filter((pl.col("n") >= tuning.price_min_forwards) & (pl.col("out_msat") > 0))
    )
    return {
        row["scid"]: int(row["fee_msat"]) * PPM // int(row["out_msat"])
        for row in recent.iter_rows(named=True)
    }


def _missed(forwards: pl.DataFrame, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """scid -> (count, msat) of local_failed forwards that asked to leave through it.

    A depleted channel's settled flow shows only what it could serve; the forwards CLN failed
    locally on it are the rest of its demand (the audit's depleted channels had plenty).
    """
    frame = conform(forwards, FORWARD_SCHEMA, FORWARD_REQUIRED, "forwards").filter(
        (pl.col("status") == "local_failed")
        & pl.col("out_channel").is_not_null()
        & pl.col("resolved_at").is_not_null()
        & (pl.col("resolved_at") >= start)
        & (pl.col("resolved_at") < end)
    )
    amount = pl.coalesce(pl.col("out_msat"), pl.col("in_msat")).fill_null(0)
    return {
        row["scid"]: (int(row["n"]), int(row["msat"]))
        for row in frame.group_by(pl.col("out_channel").alias("scid"))
        .agg(pl.len().alias("n"), amount.sum().alias("msat"))
        .iter_rows(named=True)
    }


def _role(
    channel: RebalanceChannel, net_msat: int, tuning: RebalanceTuning
) -> tuple[FlowRole, str]:
    days = tuning.flow_window_s / 86_400
    threshold_msat = tuning.flow_min_share * channel.capacity_msat
    net_sat = net_msat // MSAT_PER_SAT
    share = f"{channel.local_share:.0%} local"
    if net_msat > 0 and net_msat >= threshold_msat:
        return FlowRole.SINK, f"net outflow {net_sat} sat in {days:g} d ({share})"
    if net_msat < 0 and -net_msat >= threshold_msat:
        return FlowRole.SOURCE, f"net inflow {-net_sat} sat in {days:g} d ({share})"
    quiet = f"net flow {net_sat} sat in {days:g} d is under {tuning.flow_min_share:.0%} of capacity"
    if channel.local_share <= tuning.sink_max_local_share:
        return FlowRole.SINK, f"{quiet}; depleted at {share}"
    if channel.local_share >= tuning.source_min_local_share:
        return FlowRole.SOURCE, f"{quiet}; full at {share}"
    return FlowRole.BALANCED, f"{quiet}; {share}"
