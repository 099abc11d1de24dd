"""max-HTLC as a liquidity lever: the htlc_maximum_msat a channel should advertise (pure).

The lever LNDg and charge-lnd give operators: a channel posts the largest HTLC it can actually
send, so payers stop choosing (and failing through) a depleted channel for amounts it cannot
carry, and choose it again as soon as it can. The posted value is a rung of a ladder of
capacity × 2^(-k/2) at or below the spendable balance (never below `floor_share` of capacity;
the capacity itself once `free_share` is spendable): the ladder is the hysteresis, so small
balance moves change nothing and gossip is not spammed. Fleet channels are never narrowed (the
fleet's assistance and members' routing rely on them); `passive` channels are left alone; a
channel changed less than `min_interval_s` ago waits (the rate limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from models.htlcmax import HtlcmaxChannel, HtlcmaxDecision, HtlcmaxReason
from models.settings import HtlcmaxConfig

MSAT_PER_SAT = 1_000
RESERVE_SHARE = 0.01  # CLN's default channel reserve, when listpeerchannels gave no spendable
# lightningd's own default is a little under the capacity (reserve, max in flight): a posted
# value this close to the capacity is already unrestricted
FREE_TOLERANCE = 0.98


def spendable_msat(channel: HtlcmaxChannel) -> int:
    if channel.spendable_msat is not None:
        return channel.spendable_msat
    return max(0, channel.local_msat - int(RESERVE_SHARE * channel.capacity_msat))


def target_htlcmax_msat(channel: HtlcmaxChannel, config: HtlcmaxConfig) -> tuple[int, bool]:
    """(the rung to post, whether that is the unrestricted capacity)."""
    capacity = channel.capacity_msat
    spendable = spendable_msat(channel)
    if spendable >= config.free_share * capacity:
        return capacity, True
    floor = int(config.floor_share * capacity)
    k = 1
    rung = int(capacity * 0.5 ** (k / 2))
    while rung > spendable and rung > floor:
        k += 1
        rung = int(capacity * 0.5 ** (k / 2))
    value = max(rung, floor)
    return max(MSAT_PER_SAT, value // MSAT_PER_SAT * MSAT_PER_SAT), False


def decide_htlcmax(
    channels: Iterable[HtlcmaxChannel],
    config: HtlcmaxConfig,
    now: datetime,
    *,
    incoming: Mapping[str, int] | None = None,
) -> list[HtlcmaxDecision]:
    """A decision for every channel, holds included (each with its reason). `incoming` (scid →
    msat) is liquidity a rebalance job started this run is bringing: the channel is judged as if
    it had arrived, since the next chance to widen it is a run away and a refilled channel
    behind a narrow max-HTLC earns nothing (if the job fails, the channel is only as wide as it
    would be without the lever)."""
    decisions = []
    for channel in sorted(channels, key=lambda c: c.scid):
        extra = min(
            (incoming or {}).get(channel.scid, 0), channel.capacity_msat - channel.local_msat
        )
        if extra > 0:
            spendable = channel.spendable_msat
            channel = channel.model_copy(
                update={
                    "local_msat": channel.local_msat + extra,
                    "spendable_msat": None if spendable is None else spendable + extra,
                }
            )
        decisions.append(_decide(channel, config, now))
    return decisions


def _decide(channel: HtlcmaxChannel, config: HtlcmaxConfig, now: datetime) -> HtlcmaxDecision:
    posted = channel.posted_htlcmax_msat
    spendable = spendable_msat(channel)
    sat = MSAT_PER_SAT

    def decision(new: int, reason: HtlcmaxReason, detail: str) -> HtlcmaxDecision:
        return HtlcmaxDecision(
            scid=channel.scid,
            peer_id=channel.peer_id,
            old_htlcmax_msat=posted,
            new_htlcmax_msat=new,
            spendable_msat=spendable,
            capacity_msat=channel.capacity_msat,
            reason=reason,
            apply=new != (posted if posted is not None else channel.capacity_msat)
            and reason
            in (HtlcmaxReason.FITS_SPENDABLE, HtlcmaxReason.FREE, HtlcmaxReason.FLEET_CHANNEL),
            detail=detail,
        )

    current = posted if posted is not None else channel.capacity_msat
    if channel.passive:
        return decision(current, HtlcmaxReason.PASSIVE_POLICY, "fee policy passive: untouched")
    if channel.is_fleet:
        if current >= FREE_TOLERANCE * channel.capacity_msat:
            return decision(current, HtlcmaxReason.FLEET_CHANNEL, "fleet channel: left open")
        return decision(
            channel.capacity_msat,
            HtlcmaxReason.FLEET_CHANNEL,
            "fleet channel: advertises its capacity (assistance and members route over it)",
        )
    if not channel.usable:
        return decision(current, HtlcmaxReason.INACTIVE, "channel not normal or peer offline")
    target, free = target_htlcmax_msat(channel, config)
    if target == current or (free and current >= FREE_TOLERANCE * channel.capacity_msat):
        return decision(current, HtlcmaxReason.UNCHANGED, f"{target // sat} sat already posted")
    if channel.last_change_at is not None:
        since_s = (now - channel.last_change_at).total_seconds()
        if since_s < config.min_interval_s:
            return decision(
                current,
                HtlcmaxReason.RATE_LIMITED,
                f"changed {since_s / 3600:.1f} h ago; next change after "
                f"{config.min_interval_s / 3600:g} h (wanted {target // sat} sat)",
            )
    share = spendable / channel.capacity_msat
    if free:
        return decision(
            target,
            HtlcmaxReason.FREE,
            f"{spendable // sat} sat spendable ({share:.0%}): the capacity, {target // sat} sat",
        )
    return decision(
        target,
        HtlcmaxReason.FITS_SPENDABLE,
        f"{spendable // sat} sat spendable ({share:.0%} of {channel.capacity_msat // sat}): "
        f"post {target // sat} sat so larger HTLCs route around it",
    )
