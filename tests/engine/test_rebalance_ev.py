"""Rebalance economics: channel roles, the EV gate, amount sizing and measured outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.rebalance import (
    classify_channels,
    demand_capped_amount_msat,
    evaluate_pull,
    expected_demand_msat,
    expected_inbound_msat,
    measure_rebalance_outcome,
    size_pull_amount_msat,
)
from models.fees import OutcomeStatus
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    ChannelClass,
    FlowRole,
    RebalanceChannel,
    RebalanceTuning,
)
from models.settings import RebalanceConfig

NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
SAT = 1_000
DAY_S = 86_400
CONFIG = RebalanceConfig()  # chunk 100 k sat, max 500 ppm


def channel(scid: str, capacity_sat: int, local_share: float, fee_ppm: int = 100, **kw: object):
    fields: dict[str, object] = {
        "scid": scid,
        "peer_id": "03" + scid[:2] * 32,
        "is_fleet": False,
        "capacity_msat": capacity_sat * SAT,
        "local_msat": int(capacity_sat * SAT * local_share),
        "fee_ppm": fee_ppm,
    }
    fields.update(kw)
    return RebalanceChannel.model_validate(fields)


def cls(scid: str, *, out_sat: int = 0, forwards: int = 0, fee_ppm: int = 300, **kw: object):
    """A ChannelClass with `forwards` outbound forwards totalling `out_sat` over 14 days."""
    fields: dict[str, object] = {
        "scid": scid,
        "peer_id": "03" + scid[:2] * 32,
        "is_fleet": False,
        "role": FlowRole.SINK,
        "local_share": 0.1,
        "window_s": 14 * DAY_S,
        "out_forwards": forwards,
        "out_msat": out_sat * SAT,
        "in_msat": 0,
        "out_fee_msat": out_sat * SAT * fee_ppm // 1_000_000,
        "detail": "test",
    }
    fields.update(kw)
    return ChannelClass.model_validate(fields)


def forward(out: str | None, amount_sat: int, days_ago: float, *, into: str = "src", **kw):
    row = {
        "in_channel": into,
        "out_channel": out,
        "in_msat": amount_sat * SAT + 30 * SAT,
        "out_msat": amount_sat * SAT,
        "fee_msat": amount_sat * SAT * 300 // 1_000_000,
        "status": "settled",
        "resolved_at": NOW - timedelta(days=days_ago),
    }
    row.update(kw)
    return row


# A busy sink: 2 M sat routed out in 14 days (40 forwards of 50 k sat) at 300 ppm, 5 % local.
BUSY = channel("11x1x0", 2_000_000, 0.05, fee_ppm=300)
BUSY_CLS = cls("11x1x0", out_sat=2_000_000, forwards=40)
IDLE_SOURCE = channel("22x1x0", 3_000_000, 0.9, fee_ppm=50)
IDLE_SOURCE_CLS = cls("22x1x0", role=FlowRole.SOURCE, local_share=0.9)


# --- classification --------------------------------------------------------------------------


def test_net_outflow_makes_a_sink_and_net_inflow_a_source() -> None:
    rows = [forward("aa", 100_000, d, into="bb") for d in (1, 2, 3)]
    channels = [channel("aa", 2_000_000, 0.5), channel("bb", 2_000_000, 0.5)]
    roles = classify_channels(channels, pl.DataFrame(rows), NOW)
    assert roles["aa"].role is FlowRole.SINK
    assert roles["aa"].net_outflow_msat == 300_000 * SAT
    assert roles["bb"].role is FlowRole.SOURCE


def test_quiet_channels_fall_back_to_their_balance() -> None:
    channels = [
        channel("aa", 1_000_000, 0.01),
        channel("bb", 1_000_000, 0.95),
        channel("cc", 1_000_000, 0.5, is_fleet=True),
    ]
    roles = classify_channels(channels, pl.DataFrame([forward("aa", 1_000, 1)]), NOW)
    assert [roles[s].role for s in ("aa", "bb", "cc")] == [
        FlowRole.SINK,
        FlowRole.SOURCE,
        FlowRole.BALANCED,
    ]
    assert "depleted" in roles["aa"].detail
    assert roles["cc"].is_fleet


def test_failed_and_out_of_window_forwards_do_not_count() -> None:
    rows = [
        forward("aa", 500_000, 1, status="failed"),
        forward("aa", 500_000, 30),
        forward("aa", 500_000, -1),  # resolved after now: not yet seen
    ]
    roles = classify_channels([channel("aa", 2_000_000, 0.5)], pl.DataFrame(rows), NOW)
    assert roles["aa"].out_forwards == 0
    assert roles["aa"].role is FlowRole.BALANCED


# --- demand and the gate ---------------------------------------------------------------------


def test_demand_is_shrunk_for_thin_evidence() -> None:
    tuning = DEFAULT_REBALANCE_TUNING
    assert expected_demand_msat(cls("aa"), tuning.horizon_s, tuning) == 0
    three = expected_demand_msat(cls("aa", out_sat=300_000, forwards=3), 7 * DAY_S, tuning)
    thirty = expected_demand_msat(cls("aa", out_sat=300_000, forwards=30), 7 * DAY_S, tuning)
    assert three == 150_000 * SAT * 3 // 6  # half the window's volume, shrunk by 3 / (3 + 3)
    assert three < thirty < 150_000 * SAT


def test_busy_sink_pull_passes_with_maxppm_derived_from_the_gain() -> None:
    ev = evaluate_pull(BUSY, BUSY_CLS, IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, CONFIG)
    assert ev.passes, ev.detail
    assert ev.expected_revenue_msat == 100_000 * SAT * 300 // 1_000_000  # 30 sat
    assert ev.opportunity_cost_msat == 0
    assert ev.maxppm == 150  # half the 300 ppm the moved sats are expected to earn
    assert ev.max_cost_msat == 15 * SAT < ev.gain_msat
    assert ev.predicted_benefit_msat == 15 * SAT


def test_maxppm_never_exceeds_the_configured_cap() -> None:
    pricey = channel("11x1x0", 2_000_000, 0.05, fee_ppm=3_000)
    pricey_cls = cls("11x1x0", out_sat=2_000_000, forwards=40, fee_ppm=3_000)
    capped = RebalanceConfig(max_fee_ppm=200)
    ev = evaluate_pull(pricey, pricey_cls, IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, capped)
    assert ev.passes and ev.maxppm == 200


def test_revenue_is_priced_at_what_demand_paid_not_a_scarcity_bumped_fee() -> None:
    bumped = channel("11x1x0", 2_000_000, 0.01, fee_ppm=1_550)  # the audit's jacked fee
    ev = evaluate_pull(bumped, BUSY_CLS, IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, CONFIG)
    assert ev.dest_fee_ppm == 300


def test_a_busy_source_loses_earnings_that_count_against_the_pull() -> None:
    # The source routes 1.4 M sat a week itself and holds only 1.2 M: every sat taken is lost.
    def pull_from(source_fee_ppm: int):
        source = channel("22x1x0", 1_500_000, 0.8, fee_ppm=source_fee_ppm)
        source_cls = cls("22x1x0", out_sat=2_800_000, forwards=60, fee_ppm=source_fee_ppm)
        return evaluate_pull(BUSY, BUSY_CLS, source, source_cls, 100_000 * SAT, CONFIG)

    cheap = pull_from(100)
    assert cheap.source_lost_volume_msat == 100_000 * SAT
    assert cheap.opportunity_cost_msat == 10 * SAT
    assert cheap.passes and cheap.maxppm == 100  # (30 − 10) sat × ½ over 100 k sat

    same = pull_from(300)  # the source earns what the destination would: moving is pointless
    assert same.gain_msat == 0 and not same.passes


def test_a_silent_depleted_channel_has_nothing_to_gain() -> None:
    silent = channel("11x1x0", 2_000_000, 0.01, fee_ppm=1_550)
    ev = evaluate_pull(silent, cls("11x1x0"), IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, CONFIG)
    assert not ev.passes
    assert ev.maxppm == 0 and ev.gain_msat == 0
    assert ev.detail.startswith("no expected gain")


def test_gate_refuses_when_the_affordable_price_is_below_any_route() -> None:
    thin = cls("11x1x0", out_sat=400_000, forwards=2, fee_ppm=20)
    low_fee = channel("11x1x0", 2_000_000, 0.0, fee_ppm=20)
    ev = evaluate_pull(low_fee, thin, IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, CONFIG)
    assert ev.gain_msat > 0 and not ev.passes
    assert "maxppm" in ev.detail


def test_a_gateless_200k_chunk_at_500ppm_costs_more_than_it_can_earn() -> None:
    """The audit's setting: 200 k sat per attempt at the 500 ppm cap, no EV gate."""
    ev = evaluate_pull(
        BUSY, BUSY_CLS, IDLE_SOURCE, IDLE_SOURCE_CLS, 200_000 * SAT, CONFIG, fixed_maxppm=500
    )
    assert ev.max_cost_msat == 100 * SAT
    assert ev.gain_msat == 60 * SAT
    assert not ev.passes


def test_fleet_assistance_is_exempt_from_ev_and_pays_up_to_the_cap() -> None:
    fleet = channel("33x1x0", 2_000_000, 0.05, fee_ppm=0, is_fleet=True)
    ev = evaluate_pull(
        fleet,
        cls("33x1x0"),
        IDLE_SOURCE,
        IDLE_SOURCE_CLS,
        50_000 * SAT,
        CONFIG,
        exempt_from_ev=True,
    )
    assert ev.passes and ev.exempt_from_ev
    assert ev.maxppm == CONFIG.max_fee_ppm
    assert ev.predicted_benefit_msat == -25 * SAT  # recorded honestly: a cost, not a profit


# --- amount sizing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "source", "config", "expected_sat"),
    [
        # the configured chunk binds
        (channel("d", 5_000_000, 0.0), channel("s", 5_000_000, 1.0), CONFIG, 100_000),
        # 10 % of the smaller channel binds
        (channel("d", 500_000, 0.0), channel("s", 5_000_000, 1.0), CONFIG, 50_000),
        # what the destination needs to reach 50 % binds
        (channel("d", 5_000_000, 0.49), channel("s", 5_000_000, 1.0), CONFIG, 50_000),
        # what the source spares above max(20 % of capacity, 10 k sat) binds
        (channel("d", 5_000_000, 0.0), channel("s", 1_000_000, 0.25), CONFIG, 50_000),
        # allow_large_chunks lifts the capacity share, not the other limits
        (
            channel("d", 500_000, 0.0),
            channel("s", 5_000_000, 1.0),
            RebalanceConfig(chunk_sat=200_000, allow_large_chunks=True),
            200_000,
        ),
        # under the 10 k sat minimum: nothing
        (channel("d", 5_000_000, 0.499), channel("s", 5_000_000, 1.0), CONFIG, 0),
    ],
)
def test_amount_is_the_smallest_limit(dest, source, config, expected_sat) -> None:
    assert size_pull_amount_msat(dest, source, config) == expected_sat * SAT


def test_amount_is_whole_sats_in_steps() -> None:
    # 10 % of 987,654 sat is 98,765.4 sat: sling takes whole sats; we round down to 1 k steps.
    dest = channel("d", 987_654, 0.0)
    assert size_pull_amount_msat(dest, channel("s", 9_000_000, 1.0), CONFIG) == 98_000 * SAT


def test_amount_shrinks_to_unserved_demand_but_not_below_the_minimum() -> None:
    tuning = RebalanceTuning()
    demand = expected_demand_msat(BUSY_CLS, tuning.horizon_s, tuning)
    capped = demand_capped_amount_msat(5_000_000 * SAT, BUSY, BUSY_CLS, tuning)
    assert capped >= demand - BUSY.local_msat and capped - (demand - BUSY.local_msat) < 1_000 * SAT
    assert demand_capped_amount_msat(100_000 * SAT, BUSY, cls("11x1x0"), tuning) == 10_000 * SAT


# --- outcome -----------------------------------------------------------------------------------

FINISHED = NOW - timedelta(days=8)


def outcome_forwards(amounts_sat: list[int]) -> pl.DataFrame:
    """Forwards out of 11x1x0 at 300 ppm, one per hour after FINISHED."""
    rows = [
        forward("11x1x0", sat, 0, resolved_at=FINISHED + timedelta(hours=i + 1))
        for i, sat in enumerate(amounts_sat)
    ]
    rows.append(forward("99x1x0", 500_000, 1))  # another channel's: ignored
    return pl.DataFrame(rows)


def measure(forwards: pl.DataFrame, **kw: object):
    args: dict[str, object] = {
        "attempt_id": "a1",
        "dest_scid": "11x1x0",
        "moved_msat": 100_000 * SAT,
        "fee_paid_msat": 10 * SAT,
        "finished_at": FINISHED,
        "forwards": forwards,
        "window_s": 7 * DAY_S,
        "now": NOW,
        "predicted_benefit_msat": 15 * SAT,
    }
    args.update(kw)
    return measure_rebalance_outcome(**args)


def test_outcome_counts_volume_beyond_existing_liquidity_up_to_the_moved_amount() -> None:
    # 60 k served by the 60 k already there, then 40 k + 60 k: the moved 100 k, then beyond it.
    result = measure(
        outcome_forwards([60_000, 40_000, 60_000, 50_000]), local_before_msat=60_000 * SAT
    )
    assert result.status is OutcomeStatus.MEASURED
    assert result.routed_msat == 100_000 * SAT
    assert result.revenue_msat == 30 * SAT
    assert result.actual_benefit_msat == 20 * SAT
    assert result.prediction_error_msat == 5 * SAT


def test_outcome_of_liquidity_that_never_routed_is_its_fee_lost() -> None:
    result = measure(outcome_forwards([]), local_before_msat=0)
    assert result.status is OutcomeStatus.MEASURED
    assert result.actual_benefit_msat == -10 * SAT
    assert result.prediction_error_msat == -25 * SAT


def test_outcome_waits_for_its_window_and_for_collected_data() -> None:
    assert measure(outcome_forwards([]), now=FINISHED + timedelta(days=1)).status is (
        OutcomeStatus.PENDING
    )
    stale = measure(outcome_forwards([]), data_until=FINISHED + timedelta(days=2))
    assert stale.status is OutcomeStatus.INSUFFICIENT_DATA
    assert stale.actual_benefit_msat is None
    nothing = measure(outcome_forwards([50_000]), moved_msat=0)
    assert nothing.status is OutcomeStatus.INSUFFICIENT_DATA


# --- both sides of a pull: inbound freed at the source, inbound given up at the destination ---


def _full_source(in_sat: int, in_forwards: int, in_fee_ppm: int, local_share: float = 0.95):
    """A 2 M sat source at `local_share` whose peer sent `in_sat` through it in 14 days; those
    forwards earned `in_fee_ppm` on the channels they left by."""
    source = channel("22x1x0", 2_000_000, local_share, fee_ppm=50)
    source_cls = cls(
        "22x1x0",
        role=FlowRole.SOURCE,
        local_share=local_share,
        in_msat=in_sat * SAT,
        in_forwards=in_forwards,
        in_fee_msat=in_sat * SAT * in_fee_ppm // 1_000_000,
        # all of it left through a third channel that holds outbound
        in_by_out={"33x1x0": (in_forwards, in_sat * SAT, in_sat * SAT * in_fee_ppm // 1_000_000)},
    )
    return source, source_cls


def test_inbound_freed_on_a_full_source_is_valued_at_what_its_inbound_earned() -> None:
    # The peer sent 1.4 M sat in 14 days (700 k a week after the 30/(30+3) shrink ≈ 636 k) and
    # the source's remote side holds 100 k: a 100 k pull frees 100 k of inbound it will use.
    source, source_cls = _full_source(1_400_000, 30, in_fee_ppm=400)
    ev = evaluate_pull(BUSY, BUSY_CLS, source, source_cls, 100_000 * SAT, CONFIG)
    assert ev.source_inbound_demand_msat == 1_400_000 * SAT // 2 * 30 // 33
    assert ev.source_inbound_freed_msat == 100_000 * SAT
    assert ev.source_inbound_fee_ppm == 400
    assert ev.inbound_value_msat == 40 * SAT
    assert ev.gain_msat == ev.expected_revenue_msat + 40 * SAT == 70 * SAT
    assert "inbound freed at the source 100000 sat × 400 ppm" in ev.detail


def test_inbound_room_alone_can_pay_for_a_pull_the_outbound_side_would_refuse() -> None:
    # The destination has no demand beyond its balance; only the source's inbound pays.
    quiet = channel("11x1x0", 2_000_000, 0.2, fee_ppm=300)
    source, source_cls = _full_source(1_400_000, 30, in_fee_ppm=400)
    amount = 50_000 * SAT
    without = evaluate_pull(quiet, cls("11x1x0"), IDLE_SOURCE, IDLE_SOURCE_CLS, amount, CONFIG)
    with_room = evaluate_pull(quiet, cls("11x1x0"), source, source_cls, 50_000 * SAT, CONFIG)
    assert not without.passes and without.gain_msat == 0
    assert with_room.passes, with_room.detail
    assert with_room.expected_revenue_msat == 0 and with_room.inbound_value_msat == 20 * SAT


def test_a_source_with_enough_remote_room_frees_nothing() -> None:
    # Half empty: 1 M sat of remote room covers the week's 636 k of inbound already.
    source, source_cls = _full_source(1_400_000, 30, in_fee_ppm=400, local_share=0.5)
    ev = evaluate_pull(BUSY, BUSY_CLS, source, source_cls, 100_000 * SAT, CONFIG)
    assert ev.source_inbound_freed_msat == 0 and ev.inbound_value_msat == 0
    assert ev.gain_msat == ev.expected_revenue_msat


def test_inbound_the_destination_gives_up_counts_against_the_pull() -> None:
    # The destination's peer sends 1.4 M sat a fortnight through it at 200 ppm earned, and its
    # remote side is only 150 k sat: a 100 k pull leaves 50 k of room for ~636 k of demand.
    dest = channel("11x1x0", 250_000, 0.4, fee_ppm=300)
    leg = (30, 1_400_000 * SAT, 280 * SAT)
    dest_cls = BUSY_CLS.model_copy(
        update={
            "in_msat": leg[1],
            "in_forwards": 30,
            "in_fee_msat": leg[2],
            "in_by_out": {"33x1x0": leg},
        }
    )
    ev = evaluate_pull(dest, dest_cls, IDLE_SOURCE, IDLE_SOURCE_CLS, 100_000 * SAT, CONFIG)
    assert ev.dest_inbound_lost_msat == 100_000 * SAT
    assert ev.dest_inbound_fee_ppm == 200
    assert ev.dest_inbound_cost_msat == 20 * SAT
    assert ev.gain_msat == ev.expected_revenue_msat - 20 * SAT


def test_thin_inbound_evidence_is_shrunk_and_no_inbound_is_worth_nothing() -> None:
    tuning = DEFAULT_REBALANCE_TUNING
    one = _full_source(100_000, 1, 400)[1]
    assert expected_inbound_msat(one, 7 * DAY_S, tuning) == 50_000 * SAT // 4
    assert expected_inbound_msat(IDLE_SOURCE_CLS, 7 * DAY_S, tuning) == 0


def test_classify_counts_inbound_forwards_and_their_fees() -> None:
    rows = [forward("aa", 100_000, d, into="bb") for d in (1, 2, 3)]
    channels = [channel("aa", 2_000_000, 0.5), channel("bb", 2_000_000, 0.5)]
    roles = classify_channels(channels, pl.DataFrame(rows), NOW)
    assert roles["bb"].in_forwards == 3
    assert roles["bb"].in_fee_msat == 3 * 30 * SAT
    assert roles["bb"].inbound_fee_ppm() == 90 * SAT * 1_000_000 // (3 * 100_030 * SAT)
    assert roles["aa"].in_forwards == 0 and roles["aa"].inbound_fee_ppm() == 0


def test_the_amount_may_cover_the_sources_inbound_shortfall() -> None:
    quiet = channel("11x1x0", 2_000_000, 0.2, fee_ppm=300)
    source, source_cls = _full_source(1_400_000, 30, in_fee_ppm=400)
    tuning = DEFAULT_REBALANCE_TUNING
    alone = demand_capped_amount_msat(100_000 * SAT, quiet, cls("11x1x0"), tuning)
    both = demand_capped_amount_msat(
        100_000 * SAT, quiet, cls("11x1x0"), tuning, source=source, source_cls=source_cls
    )
    assert alone == tuning.min_amount_sat * SAT
    assert both == 100_000 * SAT


def test_inbound_that_leaves_through_the_destination_is_not_valued_twice() -> None:
    # Every forward into the source left through the destination: the pull's revenue there
    # already prices them, so the source's freed inbound adds nothing.
    source, source_cls = _full_source(1_400_000, 30, in_fee_ppm=400)
    into_dest = source_cls.model_copy(
        update={"in_by_out": {BUSY.scid: source_cls.in_by_out["33x1x0"]}}
    )
    ev = evaluate_pull(BUSY, BUSY_CLS, source, into_dest, 100_000 * SAT, CONFIG)
    assert ev.source_inbound_freed_msat == 0 and ev.inbound_value_msat == 0
    assert ev.gain_msat == ev.expected_revenue_msat


def test_inbound_leaving_through_an_empty_channel_is_worth_nothing() -> None:
    rows = [forward("aa", 100_000, d, into="bb") for d in (1, 2, 3)]
    empty_exit = [channel("aa", 2_000_000, 0.1), channel("bb", 2_000_000, 0.95)]
    roles = classify_channels(empty_exit, pl.DataFrame(rows), NOW)
    assert roles["bb"].in_forwards == 3  # still the channel's flow
    assert roles["bb"].in_by_out == {} and roles["bb"].inbound_fee_ppm() == 0
