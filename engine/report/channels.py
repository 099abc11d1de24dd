"""Detectors over the latest channel snapshots: fleet channels that charge, one-sided external
channels, and channels that never earn and never get a new fee (audit findings 4, 9 and 11)."""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime, timedelta

import polars as pl

from engine.report.base import fired, not_measurable, passed
from models.report import Finding, ReportConfig, Severity

NORMAL = "CHANNELD_NORMAL"


def mark_fleet(channels: pl.DataFrame, member_ids: Set[str]) -> pl.DataFrame:
    """`is_fleet` from collect, or the peer listed in fleet_members (either makes it ours)."""
    return channels.with_columns(
        (pl.col("is_fleet") | pl.col("peer_id").is_in(list(member_ids))).alias("is_fleet")
    )


def _row(r: dict[str, object]) -> dict[str, object]:
    return {"node": r["node_name"], "scid": r["scid"], "peer_id": str(r["peer_id"])[:16]}


def detect_fleet_fee_nonzero(
    channels: pl.DataFrame, member_ids: Set[str], config: ReportConfig
) -> Finding:
    """Channels to fleet members whose fee is not the fleet fee (0/0 unless configured)."""
    name = "fleet_fee_nonzero"
    fleet = mark_fleet(channels, member_ids).filter(
        pl.col("is_fleet") & pl.col("fee_ppm").is_not_null()
    )
    if fleet.is_empty():
        return not_measurable(name, "no channel to a fleet member in the latest snapshots")
    wrong = fleet.filter(
        (pl.col("fee_ppm") != config.fleet_fee_ppm) | (pl.col("fee_base_msat").fill_null(0) != 0)
    )
    evidence = {
        "fleet_channels": fleet.height,
        "expected_fee_ppm": config.fleet_fee_ppm,
        "wrong": [
            {**_row(r), "fee_base_msat": r["fee_base_msat"], "fee_ppm": r["fee_ppm"]}
            for r in wrong.iter_rows(named=True)
        ],
    }
    if wrong.is_empty():
        return passed(
            name,
            f"all {fleet.height} fleet channels at {config.fleet_fee_ppm} ppm / 0 msat base",
            evidence,
        )
    listed = ", ".join(
        f"{r['scid']} on {r['node_name']}: {r['fee_base_msat']} msat + {r['fee_ppm']} ppm"
        for r in wrong.head(5).iter_rows(named=True)
    )
    return fired(
        name,
        Severity.CRITICAL,
        f"{wrong.height} of {fleet.height} fleet channels charge a fee ({listed}); expected "
        f"{config.fleet_fee_ppm} ppm and 0 base",
        "Run the fees loop (it resets fleet channels to the fleet policy) and find what set "
        "the fee: a manual setchannel, another plugin, or a fee floor",
        evidence,
    )


def detect_one_sided_channels(
    channels: pl.DataFrame, member_ids: Set[str], config: ReportConfig
) -> Finding:
    """Too many active external channels almost all local or almost all remote."""
    name = "one_sided_channels"
    external = mark_fleet(channels, member_ids).filter(
        ~pl.col("is_fleet") & (pl.col("state") == NORMAL)
    )
    if external.is_empty():
        return not_measurable(name, "no active external channel in the latest snapshots")
    low = external.filter(pl.col("local_share") < config.one_sided_low_share)
    high = external.filter(pl.col("local_share") > config.one_sided_high_share)
    one_sided = low.height + high.height
    fraction = one_sided / external.height
    per_node = (
        external.group_by("node_name")
        .agg(
            pl.len().alias("channels"),
            (
                (pl.col("local_share") < config.one_sided_low_share)
                | (pl.col("local_share") > config.one_sided_high_share)
            )
            .sum()
            .alias("one_sided"),
        )
        .sort("node_name")
    )
    evidence = {
        "external_channels": external.height,
        "depleted": [
            {**_row(r), "local_share": round(r["local_share"], 3)}
            for r in low.iter_rows(named=True)
        ],
        "full": [
            {**_row(r), "local_share": round(r["local_share"], 3)}
            for r in high.iter_rows(named=True)
        ],
        "per_node": per_node.to_dicts(),
        "max_fraction": config.one_sided_max_fraction,
    }
    low_pct = round(config.one_sided_low_share * 100)
    high_pct = round(config.one_sided_high_share * 100)
    text = (
        f"{one_sided} of {external.height} external channels one-sided ({high.height} above "
        f"{high_pct}% local, {low.height} below {low_pct}% local)"
    )
    if fraction <= config.one_sided_max_fraction:
        return passed(name, text, evidence)
    nodes = ", ".join(
        f"{r['node_name']}: {r['one_sided']}/{r['channels']}" for r in per_node.to_dicts()
    )
    return fired(
        name,
        Severity.WARNING,
        f"{text}; {fraction:.0%} of channels, above the {config.one_sided_max_fraction:.0%} "
        f"bound ({nodes})",
        "Rebalance toward the depleted channels within budget and raise fees on the full ones' "
        "opposite side; a node that can barely receive cannot forward",
        evidence,
    )


def detect_cold_start_stuck(
    channels: pl.DataFrame, member_ids: Set[str], config: ReportConfig, now: datetime
) -> Finding:
    """External channels older than N days with no forward and no fee change in N days."""
    name = "cold_start_stuck"
    cutoff = now - timedelta(days=config.cold_start_days)
    external = mark_fleet(channels, member_ids).filter(
        ~pl.col("is_fleet") & (pl.col("state") == NORMAL)
    )
    old = external.filter(pl.col("first_seen_at") <= cutoff)
    if old.is_empty():
        return not_measurable(
            name,
            f"no active external channel older than {config.cold_start_days} d "
            f"({external.height} younger)",
        )
    stuck = old.filter(
        (pl.col("last_forward_at").is_null() | (pl.col("last_forward_at") < cutoff))
        & (pl.col("last_fee_change_at").is_null() | (pl.col("last_fee_change_at") < cutoff))
    )
    never = stuck.filter(pl.col("last_forward_at").is_null()).height
    evidence = {
        "old_channels": old.height,
        "stuck": [
            {
                **_row(r),
                "fee_ppm": r["fee_ppm"],
                "last_forward_at": r["last_forward_at"],
                "last_fee_change_at": r["last_fee_change_at"],
            }
            for r in stuck.iter_rows(named=True)
        ],
        "days": config.cold_start_days,
    }
    if stuck.is_empty():
        return passed(
            name,
            f"all {old.height} channels older than {config.cold_start_days} d forwarded or got "
            "a new fee within that time",
            evidence,
        )
    return fired(
        name,
        Severity.WARNING,
        f"{stuck.height} of {old.height} channels older than {config.cold_start_days} d had no "
        f"forward and no fee change in {config.cold_start_days} d ({never} never forwarded): "
        + ", ".join(
            f"{r['scid']} on {r['node_name']}" for r in stuck.head(5).iter_rows(named=True)
        ),
        "The fee controller is not exploring these channels: check their fee_decisions reasons "
        "(fees.min_interval_s, static policies) or consider closing channels that never route",
        evidence,
    )
