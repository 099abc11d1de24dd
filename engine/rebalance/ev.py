"""The expected-value gate for a pull, and the amount it is evaluated at (pure).

Economics (CLBOSS "refuse to throw good money after bad", rebalance-lnd's source opportunity
cost). Pulling A msat into destination D from source S over horizon H:

    demand(C)      = C's settled outbound volume over the flow window, scaled to H and shrunk
                     by n / (n + k) for n forwards (thin evidence is discounted, not trusted)
    extra volume   = min(A, max(0, demand(D) − local(D)))    only demand D cannot serve today
    revenue        = extra volume × D's fee (the lower of posted and realised ppm)
    lost volume    = S's demand it could serve before the move but not after
    opportunity    = lost volume × S's fee (the higher of posted and realised ppm)
    inbound(C)     = C's settled inbound volume over the window, scaled and shrunk the same way
    freed inbound  = S's inbound demand its remote side can serve after the move but not before
                     (a full source's peer cannot send to us: those forwards fail at the peer)
    inbound value  = freed inbound × the fee S's inbound forwards earned on their way out
    lost inbound   = D's inbound demand its remote side served before the move but not after
    inbound cost   = lost inbound × the fee D's inbound forwards earned
    gain           = revenue + inbound value − opportunity − inbound cost
    maxppm         = min(config cap, gain × cost_share / A)     the most we pay and still profit
    max cost       = A × maxppm                                 what the budget reserves
    propose iff gain > max cost, maxppm ≥ min_maxppm and gain − max cost ≥ min_benefit

Each estimate leans against the rebalance (revenue at the price demand actually paid, not a
scarcity-bumped posted fee; the source's loss at its higher price), because the peers' field
record is rebalancing that costs 2–10× what it earns: a missed profitable pull costs little, a
bad one costs its fee. Failed attempts pay nothing on Lightning, so success probability is not
in the gate; the breaker handles futility.
"""

from __future__ import annotations

import math

from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    MSAT_PER_SAT,
    PPM,
    ChannelClass,
    PullEvaluation,
    RebalanceChannel,
    RebalanceTuning,
)
from models.settings import RebalanceConfig

SLING_MIN_LEFT_MSAT = 10_000 * MSAT_PER_SAT  # sling keeps amount + 10 k sat on a candidate


def expected_demand_msat(
    cls: ChannelClass, horizon_s: int, tuning: RebalanceTuning, *, at_posted_fee: bool = False
) -> int:
    """Outbound volume `cls` is expected to route over `horizon_s` (served plus missed for want
    of liquidity), shrunk for thin evidence. `at_posted_fee` (a destination, whose revenue is
    priced at its posted fee): after a fee rise only the demand seen since the rise counts."""
    sample = cls.demand_since_rise if at_posted_fee else None
    if sample is None:
        asked, asked_msat, window_s = (
            cls.out_forwards + cls.missed_forwards,
            cls.out_msat + cls.missed_msat,
            cls.window_s,
        )
    else:
        asked, asked_msat, window_s = sample.asked_forwards, sample.asked_msat, sample.window_s
    if asked == 0:
        return 0
    shrink = asked / (asked + tuning.demand_prior_forwards)
    return int(asked_msat * horizon_s / window_s * shrink)


def expected_inbound_msat(
    cls: ChannelClass, horizon_s: int, tuning: RebalanceTuning, *, except_scid: str | None = None
) -> int:
    """Volume expected to *arrive* through `cls` over `horizon_s`, shrunk like outbound demand;
    forwards that left through `except_scid` (the pull's other end) are left out.

    Only settled inbound is evidence: a forward that found no inbound room failed at the peer
    and never reached our node, so a channel that sat full shows little here (conservative)."""
    forwards, in_msat, _ = cls.inbound_except(except_scid)
    if forwards <= 0 or in_msat <= 0:
        return 0
    shrink = forwards / (forwards + tuning.demand_prior_forwards)
    return int(in_msat * horizon_s / cls.window_s * shrink)


def _served(demand_msat: int, room_msat: int) -> int:
    return min(demand_msat, max(0, room_msat))


def dest_fee_ppm(channel: RebalanceChannel, cls: ChannelClass) -> int:
    """Price of the destination's demand: posted fee, or less if demand was seen paying less."""
    earned = cls.earned_fee_ppm
    return channel.fee_ppm if earned is None else min(channel.fee_ppm, earned)


def source_fee_ppm(channel: RebalanceChannel, cls: ChannelClass) -> int:
    """Price of the source's lost demand: the higher of posted and realised (conservative)."""
    earned = cls.earned_fee_ppm
    return channel.fee_ppm if earned is None else max(channel.fee_ppm, earned)


def deplete_floor_msat(capacity_msat: int, tuning: RebalanceTuning) -> int:
    """Liquidity a source keeps: sling's depleteupto floor and its 10 k sat margin, whichever is
    larger, so a candidate we size against is one sling will actually use."""
    share_floor = min(
        int(tuning.deplete_share * capacity_msat), tuning.deplete_max_sat * MSAT_PER_SAT
    )
    return max(share_floor, SLING_MIN_LEFT_MSAT)


def spare_msat(source: RebalanceChannel, tuning: RebalanceTuning) -> int:
    return max(0, source.local_msat - deplete_floor_msat(source.capacity_msat, tuning))


def need_msat(dest: RebalanceChannel, tuning: RebalanceTuning) -> int:
    """What the destination lacks to reach the target share (sling's `target`)."""
    return max(0, int(tuning.target_local_share * dest.capacity_msat) - dest.local_msat)


def size_pull_amount_msat(
    dest: RebalanceChannel,
    source: RebalanceChannel,
    config: RebalanceConfig,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
    *,
    need_override_msat: int | None = None,
) -> int:
    """Amount per attempt: the smallest of the configured chunk, a share of each channel's
    capacity (unless allow_large_chunks), what the destination needs to reach its target and
    what the source can spare above its deplete floor; whole `amount_step_sat` steps, 0 when
    under `min_amount_sat`.

    The capacity share is the audit's lesson: 200 k sat chunks failed 5/5 on channels whose
    median was a few hundred k sat, because a chunk must fit through every hop's liquidity.
    """
    limits = [
        config.chunk_sat * MSAT_PER_SAT,
        need_msat(dest, tuning) if need_override_msat is None else need_override_msat,
        spare_msat(source, tuning),
    ]
    if not config.allow_large_chunks:
        limits.append(
            int(tuning.max_capacity_share * min(dest.capacity_msat, source.capacity_msat))
        )
    step_msat = tuning.amount_step_sat * MSAT_PER_SAT
    amount_msat = max(0, min(limits)) // step_msat * step_msat
    return amount_msat if amount_msat >= tuning.min_amount_sat * MSAT_PER_SAT else 0


def demand_capped_amount_msat(
    amount_msat: int,
    dest: RebalanceChannel,
    dest_cls: ChannelClass,
    tuning: RebalanceTuning,
    *,
    source: RebalanceChannel | None = None,
    source_cls: ChannelClass | None = None,
) -> int:
    """Shrink an amount to the destination's unserved demand (never below the minimum attempt).

    Moving more than the horizon's demand (the destination's outbound, or with `source` the
    source's inbound beyond its remote side) adds cost and no revenue; a smaller chunk also routes
    more easily. The minimum keeps tiny demand from producing dust-sized jobs: the gate then
    judges the minimum attempt against that tiny revenue and refuses it.
    """
    unserved = max(
        0,
        expected_demand_msat(dest_cls, tuning.horizon_s, tuning, at_posted_fee=True)
        - dest.local_msat,
    )
    if source is not None and source_cls is not None:
        # inbound the source's peer would send beyond the room it has: moving that much
        # out of the source is worth something even where the destination's demand is not
        short_in = expected_inbound_msat(
            source_cls, tuning.horizon_s, tuning, except_scid=dest.scid
        ) - (source.capacity_msat - source.local_msat)
        unserved = max(unserved, short_in)
    step_msat = tuning.amount_step_sat * MSAT_PER_SAT
    wanted = max(tuning.min_amount_sat * MSAT_PER_SAT, math.ceil(unserved / step_msat) * step_msat)
    return min(amount_msat, wanted)


def evaluate_pull(
    dest: RebalanceChannel,
    dest_cls: ChannelClass,
    source: RebalanceChannel,
    source_cls: ChannelClass,
    amount_msat: int,
    config: RebalanceConfig,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
    *,
    exempt_from_ev: bool = False,
    fixed_maxppm: int | None = None,
    cost_share: float | None = None,
) -> PullEvaluation:
    """The gate's verdict and arithmetic for pulling `amount_msat` into `dest` from `source`.

    `exempt_from_ev` (fleet assistance) passes whatever the EV and pays up to the config cap;
    it still goes through the budget. `fixed_maxppm` evaluates a given price instead of deriving
    one: how the tests show what a gate-less 200 k sat / 500 ppm job would have risked.
    `cost_share` overrides the tuning's share of the gain that may be paid (a quoted route).
    """
    horizon_s = tuning.horizon_s
    dest_demand = expected_demand_msat(dest_cls, horizon_s, tuning, at_posted_fee=True)
    extra = min(amount_msat, max(0, dest_demand - dest.local_msat))
    d_ppm = dest_fee_ppm(dest, dest_cls)
    revenue = extra * d_ppm // PPM

    source_demand = expected_demand_msat(source_cls, horizon_s, tuning)
    before = min(source_demand, source.local_msat)
    after = min(source_demand, max(0, source.local_msat - amount_msat))
    lost = before - after
    s_ppm = source_fee_ppm(source, source_cls)
    opportunity = math.ceil(lost * s_ppm / PPM)
    # Inbound: forwards between the pull's two ends are the destination's demand (or the
    # source's), valued there once; only inbound that leaves by another channel counts here.
    s_in_demand = expected_inbound_msat(source_cls, horizon_s, tuning, except_scid=dest.scid)
    s_remote = source.capacity_msat - source.local_msat
    freed = _served(s_in_demand, s_remote + amount_msat) - _served(s_in_demand, s_remote)
    s_in_ppm = source_cls.inbound_fee_ppm(dest.scid)
    inbound_value = freed * s_in_ppm // PPM
    d_in_demand = expected_inbound_msat(dest_cls, horizon_s, tuning, except_scid=source.scid)
    d_remote = dest.capacity_msat - dest.local_msat
    lost_in = _served(d_in_demand, d_remote) - _served(d_in_demand, d_remote - amount_msat)
    d_in_ppm = dest_cls.inbound_fee_ppm(source.scid)
    inbound_cost = math.ceil(lost_in * d_in_ppm / PPM)
    gain = revenue + inbound_value - opportunity - inbound_cost

    if fixed_maxppm is not None:
        maxppm = fixed_maxppm
    elif exempt_from_ev:
        maxppm = config.max_fee_ppm
    elif gain <= 0 or amount_msat == 0:
        maxppm = 0
    else:
        share = tuning.cost_share_of_gain if cost_share is None else cost_share
        maxppm = min(config.max_fee_ppm, int(gain * share * PPM // amount_msat))
    max_cost = math.ceil(amount_msat * maxppm / PPM)

    sat = MSAT_PER_SAT
    arithmetic = (
        f"{horizon_s / 86_400:g} d demand {dest_demand // sat} sat beyond {dest.local_msat // sat} "
        f"sat local → {extra // sat} sat × {d_ppm} ppm = {revenue / sat:g} sat; source "
        f"{source.scid} loses {lost // sat} sat × {s_ppm} ppm = {opportunity / sat:g} sat; "
        f"inbound freed at the source {freed // sat} sat × {s_in_ppm} ppm = "
        f"{inbound_value / sat:g} sat, lost at the destination {lost_in // sat} sat × "
        f"{d_in_ppm} ppm = {inbound_cost / sat:g} sat; "
        f"gain {gain / sat:g} sat vs max cost {max_cost / sat:g} sat "
        f"({amount_msat // sat} sat × {maxppm} ppm)"
    )
    if amount_msat == 0:
        passes, verdict = False, "no amount to move"
    elif exempt_from_ev:
        passes, verdict = True, "fleet assistance: exempt from EV, budget still applies"
    elif gain <= 0:
        passes = False
        verdict = (
            "no expected gain: no demand beyond the destination's balance or the source's room"
        )
    elif gain <= max_cost:
        passes, verdict = False, "expected gain does not exceed the worst-case fee"
    elif maxppm < tuning.min_maxppm:
        passes = False
        verdict = f"affordable maxppm {maxppm} is under {tuning.min_maxppm} (no route that cheap)"
    elif gain - max_cost < tuning.min_benefit_msat:
        passes = False
        verdict = f"net benefit under {tuning.min_benefit_msat / sat:g} sat is not worth a job"
    else:
        passes, verdict = True, "expected gain exceeds the worst-case fee"
    return PullEvaluation(
        dest_scid=dest.scid,
        source_scid=source.scid,
        amount_msat=amount_msat,
        horizon_s=horizon_s,
        dest_demand_msat=dest_demand,
        dest_extra_volume_msat=extra,
        dest_fee_ppm=d_ppm,
        expected_revenue_msat=revenue,
        source_demand_msat=source_demand,
        source_lost_volume_msat=lost,
        source_fee_ppm=s_ppm,
        opportunity_cost_msat=opportunity,
        source_inbound_demand_msat=s_in_demand,
        source_inbound_freed_msat=freed,
        source_inbound_fee_ppm=s_in_ppm,
        inbound_value_msat=inbound_value,
        dest_inbound_lost_msat=lost_in,
        dest_inbound_fee_ppm=d_in_ppm,
        dest_inbound_cost_msat=inbound_cost,
        gain_msat=gain,
        maxppm=maxppm,
        max_cost_msat=max_cost,
        passes=passes,
        exempt_from_ev=exempt_from_ev,
        detail=f"{verdict}: {arithmetic}",
    )
