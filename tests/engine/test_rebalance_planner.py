"""The rebalance planner: the audit's node, a busy sink, and every refusal with its reason."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.fees.frames import FORWARD_SCHEMA
from engine.rebalance import (
    build_ledger,
    classify_channels,
    evaluate_pull,
    plan_rebalances,
    record_attempt,
)
from engine.rebalance.chunks import chunk_plan
from engine.rebalance.policy import contradictions
from models.budget import BudgetLedger, Reservation
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    AttemptRecord,
    BreakerState,
    FlowRole,
    RebalanceChannel,
    RebalanceProposal,
    Skip,
    SkipReason,
)
from models.rebalance_policy import RebalanceMode, RebalancePolicy
from models.settings import BudgetConfig, RebalanceConfig

NOW = datetime(2026, 2, 10, tzinfo=UTC)
NODE = "02" + "a" * 64
SAT = 1_000
CONFIG = RebalanceConfig()
AUDIT_CONFIG = RebalanceConfig(chunk_sat=200_000, max_fee_ppm=500)


def chan(
    n: int, capacity_sat: int, local_share: float, fee_ppm: int = 100, **kw: object
) -> RebalanceChannel:
    fields: dict[str, object] = {
        "scid": f"9000{n:02d}x1x0",
        "peer_id": "03" + f"{n:02d}" * 32,
        "is_fleet": False,
        "capacity_msat": capacity_sat * SAT,
        "local_msat": int(capacity_sat * SAT * local_share),
        "fee_ppm": fee_ppm,
    }
    fields.update(kw)
    return RebalanceChannel.model_validate(fields)


def ledger(budget_sat: int = 2_000, **kw: object) -> BudgetLedger:
    fields: dict[str, object] = {
        "node_id": NODE,
        "day": NOW.date(),
        "budget_msat": budget_sat * SAT,
        "fixed_budget_msat": budget_sat * SAT,
        "earnings_budget_msat": budget_sat * SAT,
        "earned_msat": 0,
        "trailing_earned_msat": 0,
        "earnings_window_days": 7,
    }
    fields.update(kw)
    return BudgetLedger.model_validate(fields)


def forwards_out(
    out: RebalanceChannel, into: list[RebalanceChannel], days_ago: list[float], rng: random.Random
) -> list[dict[str, object]]:
    rows = []
    for days in days_ago:
        amount = rng.randint(30_000, 90_000) * SAT
        fee = amount * 312 // 1_000_000
        rows.append(
            {
                "in_channel": into[rng.randrange(len(into))].scid,
                "out_channel": out.scid,
                "in_msat": amount + fee,
                "out_msat": amount,
                "fee_msat": fee,
                "status": "settled",
                "resolved_at": NOW - timedelta(days=days),
            }
        )
    return rows


def plan(channels, forwards, book=None, breaker=None, config=CONFIG, **kw):
    frame = pl.DataFrame(forwards) if forwards else pl.DataFrame(schema=FORWARD_SCHEMA)
    return plan_rebalances(
        channels, frame, book or ledger(), breaker or BreakerState(), config, NOW, **kw
    )


def proposals(result) -> list[RebalanceProposal]:
    return [r for r in result if isinstance(r, RebalanceProposal)]


def skips(result) -> dict[str, Skip]:
    return {r.scid: r for r in result if isinstance(r, Skip)}


# --- the audited node -------------------------------------------------------------------------


def audit_node() -> tuple[list[RebalanceChannel], list[dict[str, object]]]:
    """nexus-02 on 2026-02-10: 16 channels, 55 M sat, ~75 % local, 51 forwards in 21 days.

    Eleven external channels sit at 73–93 % local and a twelfth at 80 %, two are drained to 1 %
    with fees jacked to 1,550 ppm, two fleet channels are balanced at 0 ppm. Only three channels
    routed out: the two drained ones (before they drained) and the one at 80 %.
    """
    caps = [5_000_000, 5_000_000, 4_000_000, 4_000_000, 4_000_000, 3_500_000]
    caps += [3_500_000, 3_000_000, 3_000_000, 3_000_000, 2_500_000]
    full = [chan(i, cap, 0.73 + 0.02 * i) for i, cap in enumerate(caps)]
    drained_a = chan(20, 2_000_000, 0.01, fee_ppm=1_550)
    drained_b = chan(21, 2_000_000, 0.01, fee_ppm=1_550)
    busy_full = chan(22, 3_000_000, 0.80, fee_ppm=250)
    fleet = [chan(n, 3_750_000, 0.5, fee_ppm=0, is_fleet=True) for n in (30, 31)]
    rng = random.Random(20260210)
    rows = forwards_out(drained_a, full, [21 - k * 0.8 for k in range(14)], rng)
    rows += forwards_out(drained_b, full, [21 - k * 0.6 for k in range(10)], rng)
    rows += forwards_out(busy_full, full, [20.5 - k * 0.75 for k in range(27)], rng)
    return [*full, drained_a, drained_b, busy_full, *fleet], rows


def test_audit_fixture_matches_the_audit() -> None:
    channels, rows = audit_node()
    assert len(channels) == 16 and len(rows) == 51
    assert sum(c.capacity_msat for c in channels) == 55_000_000 * SAT
    earned_sat = sum(r["fee_msat"] for r in rows) / SAT
    assert 800 < earned_sat < 1_000  # the audit: 955 sat


def test_audit_thin_traffic_proposes_nothing_whose_gain_is_below_its_max_cost() -> None:
    channels, rows = audit_node()
    forwards = pl.DataFrame(rows)
    book = build_ledger(NODE, NOW.date(), forwards=forwards, config=BudgetConfig())
    result = plan_rebalances(channels, forwards, book, BreakerState(), AUDIT_CONFIG, NOW)

    assert sorted(r.scid if isinstance(r, Skip) else r.dest_scid for r in result) == sorted(
        c.scid for c in channels
    )  # one entry per channel: nothing happens silently
    for proposal in proposals(result):
        gain = proposal.expected_revenue_msat - proposal.opportunity_cost_msat
        assert gain > proposal.max_cost_msat
        assert proposal.predicted_benefit_msat > 0
        assert proposal.amount_msat < 200_000 * SAT  # sized to demand, not the 200 k chunk
        assert proposal.maxppm <= AUDIT_CONFIG.max_fee_ppm
    assert sum(p.max_cost_msat for p in proposals(result)) <= book.budget_msat
    assert skips(result)["900021x1x0"].reason is SkipReason.EV_BELOW_COST  # drained, silent
    json.dumps([entry.model_dump(mode="json") for entry in result])  # storable as-is


def test_audit_gateless_200k_chunks_would_cost_more_than_they_could_earn() -> None:
    """What cl_revenue_ops did: 200 k sat per attempt at up to 500 ppm into the drained channels."""
    channels, rows = audit_node()
    classes = classify_channels(channels, pl.DataFrame(rows), NOW)
    by_scid = {c.scid: c for c in channels}
    sinks = [c for c in channels if classes[c.scid].role is FlowRole.SINK and c.local_share < 0.5]
    sources = [c for c in channels if classes[c.scid].role is FlowRole.SOURCE]
    assert {c.scid for c in sinks} == {"900020x1x0", "900021x1x0"}
    for dest in sinks:
        for source in sources:
            naive = evaluate_pull(
                dest,
                classes[dest.scid],
                by_scid[source.scid],
                classes[source.scid],
                200_000 * SAT,
                AUDIT_CONFIG,
                fixed_maxppm=500,
            )
            assert naive.gain_msat < naive.max_cost_msat == 100 * SAT


# --- a busy sink ------------------------------------------------------------------------------


def busy_sink_node() -> tuple[list[RebalanceChannel], list[dict[str, object]]]:
    """A 2 M sat channel at 5 % local that routed 60 forwards out in 14 days at 312 ppm."""
    sink = chan(1, 2_000_000, 0.05, fee_ppm=312)
    sources = [chan(n, 4_000_000, 0.9) for n in (2, 3, 4, 5)]
    rows = forwards_out(sink, sources, [k * 0.23 for k in range(1, 61)], random.Random(1))
    return [sink, *sources], rows


def test_a_busy_sink_gets_a_pull_proposal() -> None:
    channels, rows = busy_sink_node()
    result = plan(channels, rows)
    [proposal] = proposals(result)
    assert proposal.dest_scid == "900001x1x0" and proposal.direction == "pull"
    assert proposal.amount_msat == 100_000 * SAT  # the configured chunk binds
    assert proposal.amount_sat * SAT == proposal.amount_msat
    # the sources' inbound differs (each frees a different share of its peer's demand), so only
    # those worth the best one's price join it
    assert 1 <= len(proposal.candidates) <= 3
    assert all(c["maxppm"] >= proposal.maxppm for c in proposal.inputs["candidates"])
    assert set(proposal.candidates) <= {c.scid for c in channels[1:]}
    assert proposal.outppm == 100 and proposal.target == 0.5
    assert 10 <= proposal.maxppm <= CONFIG.max_fee_ppm
    assert proposal.max_cost_msat == proposal.amount_msat * proposal.maxppm // 1_000_000
    assert proposal.predicted_benefit_msat > 0 and not proposal.exempt_from_ev
    assert (
        311 <= proposal.inputs["evaluation"]["dest_fee_ppm"] <= 312
    )  # realised: fees were rounded down
    assert {s.reason for s in skips(result).values()} == {SkipReason.IS_SOURCE}


def test_planning_is_deterministic() -> None:
    channels, rows = busy_sink_node()
    assert plan(channels, rows) == plan(list(reversed(channels)), list(reversed(rows)))


# --- refusals with reasons --------------------------------------------------------------------


def test_multi_channel_peer_whose_other_channel_holds_outbound_is_refused() -> None:
    channels, rows = busy_sink_node()
    sibling = chan(9, 2_000_000, 0.95, peer_id=channels[0].peer_id)
    result = plan([*channels, sibling], rows)
    skip = skips(result)["900001x1x0"]
    assert skip.reason is SkipReason.MULTI_CHANNEL_PEER
    assert "900009x1x0" in skip.detail and "any channel to the peer" in skip.detail
    assert not proposals(result)


def test_two_channels_to_one_peer_never_rebalance_into_each_other() -> None:
    channels, rows = busy_sink_node()
    sink = channels[0]
    # The only channel with spare liquidity goes to the same peer, and the peer still needs it.
    sibling = chan(9, 1_000_000, 0.9, peer_id=sink.peer_id)
    others = [c.model_copy(update={"local_msat": 0}) for c in channels[1:]]
    result = plan([sink, sibling, *others], rows)
    skip = skips(result)["900001x1x0"]
    assert skip.reason is SkipReason.MULTI_CHANNEL_PEER
    assert "same peer" in skip.detail


def test_refilling_a_channel_that_just_gave_liquidity_is_refused_as_ping_pong() -> None:
    channels, rows = busy_sink_node()
    gave = AttemptRecord(
        attempt_id="earlier",
        dest_scid="900002x1x0",
        source_scid="900001x1x0",
        finished_at=NOW - timedelta(days=1),
        succeeded=True,
        moved_msat=80_000 * SAT,
    )
    result = plan(channels, rows, attempts=[gave])
    skip = skips(result)["900001x1x0"]
    assert skip.reason is SkipReason.PING_PONG
    assert "earlier" in skip.detail


def test_draining_every_recently_refilled_source_is_refused_as_ping_pong() -> None:
    channels, rows = busy_sink_node()
    refills = [
        AttemptRecord(
            attempt_id=f"refill-{c.scid}",
            dest_scid=c.scid,
            finished_at=NOW - timedelta(hours=6),
            succeeded=True,
            moved_msat=50_000 * SAT,
        )
        for c in channels[1:]
    ]
    result = plan(channels, rows, attempts=refills)
    assert skips(result)["900001x1x0"].reason is SkipReason.PING_PONG


def test_breaker_backoff_and_suspension_are_reasons() -> None:
    channels, rows = busy_sink_node()
    state = BreakerState()
    failure = AttemptRecord(
        attempt_id="f1",
        dest_scid="900001x1x0",
        finished_at=NOW - timedelta(minutes=10),
        succeeded=False,
        failure_reason="NoCheapRoute",
    )
    state = record_attempt(state, failure)
    skip = skips(plan(channels, rows, breaker=state))["900001x1x0"]
    assert skip.reason is SkipReason.BREAKER_BACKOFF and "NoCheapRoute" in skip.detail
    for i in range(8):
        state = record_attempt(state, failure.model_copy(update={"attempt_id": f"f{i + 2}"}))
    skip = skips(plan(channels, rows, breaker=state))["900001x1x0"]
    assert skip.reason is SkipReason.SUSPENDED


def test_a_pull_too_big_for_the_budget_is_shrunk_to_fit_and_regated() -> None:
    channels, rows = busy_sink_node()
    [full] = proposals(plan(channels, rows))
    [fitted] = proposals(plan(channels, rows, book=ledger(budget_sat=5)))
    assert full.max_cost_msat > 5 * SAT >= fitted.max_cost_msat
    assert fitted.amount_msat < full.amount_msat
    assert fitted.inputs["refit_from_msat"] == full.amount_msat
    assert fitted.predicted_benefit_msat > 0


def test_budget_exhausted_is_a_reason_with_the_numbers() -> None:
    channels, rows = busy_sink_node()
    result = plan(channels, rows, book=ledger(budget_sat=1))  # not even the 10 k sat minimum fits
    skip = skips(result)["900001x1x0"]
    assert skip.reason is SkipReason.BUDGET_EXHAUSTED
    assert "1 sat left" in skip.detail and skip.inputs["max_cost_msat"] > 1 * SAT


def test_an_open_reservation_on_the_channel_means_its_job_is_running() -> None:
    channels, rows = busy_sink_node()
    open_job = Reservation(
        attempt_id="r1", node_id=NODE, max_fee_msat=SAT, reserved_at=NOW, scid="900001x1x0"
    )
    result = plan(channels, rows, book=ledger(reservations=(open_job,)))
    assert skips(result)["900001x1x0"].reason is SkipReason.JOB_RUNNING


def test_attempt_limit_keeps_the_best_pulls() -> None:
    channels, rows = busy_sink_node()
    quieter = chan(7, 2_000_000, 0.05, fee_ppm=312)
    rows += forwards_out(quieter, channels[1:], [k * 0.5 for k in range(1, 20)], random.Random(2))
    result = plan([*channels, quieter], rows, config=RebalanceConfig(max_attempts_per_run=1))
    assert [p.dest_scid for p in proposals(result)] == ["900001x1x0"]
    assert skips(result)["900007x1x0"].reason is SkipReason.ATTEMPT_LIMIT


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"usable": False}, SkipReason.CHANNEL_INACTIVE),
        ({"is_fleet": True}, SkipReason.FLEET_CHANNEL),
        ({"local_msat": 1_200_000 * SAT}, SkipReason.AT_TARGET),
    ],
)
def test_destination_refusals(change: dict[str, object], reason: SkipReason) -> None:
    channels, rows = busy_sink_node()
    result = plan([channels[0].model_copy(update=change), *channels[1:]], rows)
    assert skips(result)["900001x1x0"].reason is reason


def test_no_source_when_nothing_has_spare_liquidity() -> None:
    channels, rows = busy_sink_node()
    empty = [c.model_copy(update={"local_msat": c.capacity_msat // 10}) for c in channels[1:]]
    skip = skips(plan([channels[0], *empty], rows))["900001x1x0"]
    assert skip.reason is SkipReason.NO_SOURCE
    assert "deplete floor" in skip.detail


def test_fleet_assistance_is_exempt_from_ev_but_not_from_the_budget() -> None:
    channels, _ = busy_sink_node()
    member = chan(8, 3_000_000, 0.02, fee_ppm=0, is_fleet=True)
    result = plan([member, *channels[1:]], [], assist_scids=["900008x1x0"])
    [proposal] = proposals(result)
    assert proposal.exempt_from_ev and proposal.maxppm == CONFIG.max_fee_ppm
    assert proposal.predicted_benefit_msat < 0  # recorded as the cost it is
    broke = plan([member, *channels[1:]], [], book=ledger(budget_sat=1), assist_scids=[member.scid])
    assert skips(broke)["900008x1x0"].reason is SkipReason.BUDGET_EXHAUSTED


def test_every_skip_reason_is_from_the_closed_enum() -> None:
    channels, rows = audit_node()
    for entry in plan(channels, rows):
        if isinstance(entry, Skip):
            assert entry.reason in SkipReason and entry.detail


def test_demand_is_priced_at_what_recent_forwards_paid_after_a_fee_rise() -> None:
    """The fee loop raised the sink from 100 to 400 ppm 2 days ago: the pull is judged at what
    the last days' forwards paid, not at the 14-day average that still remembers 100 ppm."""
    from engine.rebalance import classify_channels

    channels, rows = busy_sink_node()
    sink = channels[0].model_copy(update={"fee_ppm": 400})
    old = [
        dict(r, fee_msat=r["out_msat"] * 100 // 1_000_000)
        for r in rows
        if r["resolved_at"] < NOW - timedelta(days=3)
    ]
    recent_days = [0.1 * k for k in range(1, 9)]  # 8 forwards in the last day at 400 ppm
    fresh = [
        dict(r, fee_msat=r["out_msat"] * 400 // 1_000_000, resolved_at=NOW - timedelta(days=d))
        for r, d in zip(rows, recent_days, strict=False)
    ]
    frame = pl.DataFrame([*old, *fresh])
    classes = classify_channels([sink, *channels[1:]], frame, NOW)
    assert 395 <= classes[sink.scid].earned_fee_ppm <= 400
    few = pl.DataFrame([*old, *fresh[:2]])  # 2 recent forwards say too little: window price
    assert classify_channels([sink, *channels[1:]], few, NOW)[sink.scid].earned_fee_ppm < 200


def test_demand_is_priced_only_by_forwards_since_the_last_fee_change() -> None:
    """Raised to 400 ppm 12 hours ago with 2 forwards since: the forwards at 100 ppm before the
    change do not price it, so the posted fee is the price (and the pull is judged at 400)."""
    from engine.rebalance import classify_channels

    channels, rows = busy_sink_node()
    sink = channels[0].model_copy(
        update={"fee_ppm": 400, "fee_changed_at": NOW - timedelta(hours=12)}
    )
    old = [dict(r, fee_msat=r["out_msat"] * 100 // 1_000_000) for r in rows]
    fresh = [
        dict(r, fee_msat=r["out_msat"] * 400 // 1_000_000, resolved_at=NOW - timedelta(hours=h))
        for r, h in zip(rows, (2, 5), strict=False)
    ]
    frame = pl.DataFrame([*old, *fresh])
    cls = classify_channels([sink, *channels[1:]], frame, NOW)[sink.scid]
    assert cls.repriced and cls.recent_fee_ppm is None and cls.earned_fee_ppm is None
    [proposal] = proposals(plan([sink, *channels[1:]], [*old, *fresh]))
    assert proposal.inputs["evaluation"]["dest_fee_ppm"] == 400

    unchanged = channels[0].model_copy(update={"fee_ppm": 400})
    stale = classify_channels([unchanged, *channels[1:]], frame, NOW)[unchanged.scid]
    assert not stale.repriced and stale.earned_fee_ppm < 200  # no change logged: window price


def test_after_a_fee_rise_only_demand_seen_since_the_rise_justifies_a_refill() -> None:
    """The sink sold 60 forwards at 312 ppm over 14 days, then its fee was raised to 600 ppm a
    day ago. Nothing asked for it since: the old demand does not justify a refill at the new
    price. Forwards failing for want of liquidity since the rise do."""
    channels, rows = busy_sink_node()
    before = [r for r in rows if r["resolved_at"] < NOW - timedelta(days=1)]
    raised = channels[0].model_copy(
        update={
            "fee_ppm": 600,
            "fee_changed_at": NOW - timedelta(days=1),
            "fee_before_change_ppm": 312,
        }
    )
    quiet = plan([raised, *channels[1:]], before)
    assert not proposals(quiet)
    assert skips(quiet)[raised.scid].reason is SkipReason.EV_BELOW_COST

    failing = [
        {
            "in_channel": channels[1].scid,
            "out_channel": raised.scid,
            "in_msat": 80_000 * SAT,
            "out_msat": 80_000 * SAT,
            "fee_msat": 0,
            "status": "local_failed",
            "resolved_at": NOW - timedelta(hours=h),
        }
        for h in range(1, 20, 2)
    ]
    [proposal] = proposals(plan([raised, *channels[1:]], [*before, *failing]))
    assert proposal.dest_scid == raised.scid
    assert proposal.inputs["evaluation"]["dest_fee_ppm"] == 600

    lowered = raised.model_copy(update={"fee_ppm": 200, "fee_before_change_ppm": 312})
    [cheaper] = proposals(plan([lowered, *channels[1:]], before))  # a cut keeps the old demand
    assert cheaper.dest_scid == lowered.scid


# --- operator policies ------------------------------------------------------------------------


def test_a_never_or_source_only_destination_is_skipped_naming_the_policy() -> None:
    channels, rows = busy_sink_node()
    sink = channels[0].scid
    for mode, reason in (
        (RebalanceMode.NEVER, SkipReason.POLICY_NEVER),
        (RebalanceMode.SOURCE_ONLY, SkipReason.POLICY_SOURCE_ONLY),
    ):
        result = plan(channels, rows, policies=[RebalancePolicy(mode=mode, scid=sink)])
        assert not proposals(result)
        skip = skips(result)[sink]
        assert skip.reason is reason
        assert f"rebalance policy {mode.value} (scid:{sink})" in skip.detail
    sink_only = plan(channels, rows, policies=[RebalancePolicy(mode="sink-only", scid=sink)])
    assert [p.dest_scid for p in proposals(sink_only)] == [sink]


def test_a_peer_policy_applies_and_a_channel_policy_beats_it() -> None:
    channels, rows = busy_sink_node()
    sink = channels[0]
    peer_never = RebalancePolicy(mode="never", peer_id=sink.peer_id)
    assert skips(plan(channels, rows, policies=[peer_never]))[sink.scid].reason is (
        SkipReason.POLICY_NEVER
    )
    channel_auto = RebalancePolicy(mode="auto", scid=sink.scid)
    assert proposals(plan(channels, rows, policies=[peer_never, channel_auto]))


def test_never_and_sink_only_sources_feed_nothing() -> None:
    channels, rows = busy_sink_node()
    held = [RebalancePolicy(mode="never", scid=c.scid) for c in channels[1:3]]
    held += [RebalancePolicy(mode="sink-only", scid=c.scid) for c in channels[3:]]
    skip = skips(plan(channels, rows, policies=held))[channels[0].scid]
    assert skip.reason is SkipReason.NO_SOURCE
    assert "held by rebalance policy" in skip.detail
    assert f"{channels[1].scid}: rebalance policy never (scid:{channels[1].scid})" in skip.detail
    one_left = plan(channels, rows, policies=held[:-1])
    [proposal] = proposals(one_left)
    assert proposal.candidates == (channels[4].scid,)


def test_an_operator_never_wins_over_fleet_assistance() -> None:
    channels, _ = busy_sink_node()
    member = chan(8, 3_000_000, 0.02, fee_ppm=0, is_fleet=True)
    never = [RebalancePolicy(mode="never", scid=member.scid)]
    result = plan([member, *channels[1:]], [], assist_scids=[member.scid], policies=never)
    skip = skips(result)[member.scid]
    assert skip.reason is SkipReason.POLICY_NEVER and "fleet-assistance" in skip.detail


def test_config_check_finds_a_policy_that_contradicts_an_assistance_pull() -> None:
    peers = {"1x1x0": "03aa", "2x1x0": "03bb"}
    found = contradictions(
        [
            RebalancePolicy(mode="never", scid="1x1x0"),
            RebalancePolicy(mode="sink-only", peer_id="03bb"),
        ],
        peers,
        [("1x1x0", "2x1x0")],
    )
    assert len(found) == 2
    assert "rebalance policy never (scid:1x1x0) forbids refilling 1x1x0" in found[0]
    assert "rebalance policy sink-only (peer:03bb) forbids draining 2x1x0" in found[1]
    fine = [RebalancePolicy(mode="sink-only", scid="1x1x0")]
    assert contradictions(fine, peers, [("1x1x0", None)]) == []


# --- chunks that adapt ------------------------------------------------------------------------


def _into_sink(ok: bool, *, hours_ago: float, chunk_sat: int = 100_000, reason: str = "") -> object:
    return AttemptRecord(
        attempt_id=f"a{hours_ago:g}",
        dest_scid="900001x1x0",
        finished_at=NOW - timedelta(hours=hours_ago),
        succeeded=ok,
        moved_msat=chunk_sat * SAT if ok else 0,
        failure_reason=None if ok else reason,
        amount_msat=chunk_sat * SAT,
    )


def test_a_liquidity_failure_halves_the_next_chunk_down_to_the_floor() -> None:
    tuning = DEFAULT_REBALANCE_TUNING
    tcf = "sling reports WIRE_TEMPORARY_CHANNEL_FAILURE; 3 failed route attempt(s)"
    one = chunk_plan("900001x1x0", [_into_sink(False, hours_ago=1, reason=tcf)], tuning)
    assert one.cap_msat == 50_000 * SAT and one.repeats == 1
    assert "failed for liquidity" in one.detail
    small = _into_sink(False, hours_ago=1, chunk_sat=12_000, reason=tcf)
    assert chunk_plan("900001x1x0", [small], tuning).cap_msat == tuning.min_amount_sat * SAT
    # a route-price failure says nothing about liquidity: no halving
    pricey = _into_sink(False, hours_ago=1, reason="NoCheapRoute; 1 failed route attempt(s)")
    assert chunk_plan("900001x1x0", [pricey], tuning).cap_msat is None
    # a success since the failure lifts the cap and lets the pull repeat
    healed = [_into_sink(False, hours_ago=30, reason=tcf), _into_sink(True, hours_ago=2)]
    plan_after = chunk_plan("900001x1x0", healed, tuning)
    assert plan_after.cap_msat is None and plan_after.repeats == tuning.max_repeat_chunks


def test_the_planner_sizes_the_next_chunk_from_a_liquidity_failure() -> None:
    channels, rows = busy_sink_node()
    tcf = "sling reports WIRE_TEMPORARY_CHANNEL_FAILURE; 3 failed route attempt(s)"
    failed = _into_sink(False, hours_ago=13, reason=tcf)
    [proposal] = proposals(plan(channels, rows, attempts=[failed]))
    assert proposal.amount_msat == 50_000 * SAT and proposal.chunks == 1
    assert "failed for liquidity" in proposal.inputs["chunking"]


def test_after_a_chunk_that_moved_the_pull_repeats_while_each_chunk_pays() -> None:
    channels, rows = busy_sink_node()
    worked = _into_sink(True, hours_ago=13)
    [single] = proposals(plan(channels, rows))
    [repeated] = proposals(plan(channels, rows, attempts=[worked]))
    assert single.chunks == 1
    assert repeated.chunk_msat == single.amount_msat and repeated.chunks > 1
    assert repeated.amount_msat == repeated.chunks * repeated.chunk_msat
    assert repeated.maxppm == single.maxppm  # every chunk at the first one's price
    assert repeated.max_cost_msat == repeated.amount_msat * repeated.maxppm // 1_000_000
    assert repeated.predicted_benefit_msat >= single.predicted_benefit_msat
    # sling-once gets chunk and total: onceamount must be a multiple of amount
    assert repeated.amount_sat % repeated.chunk_sat == 0


def test_repeated_chunks_stop_where_the_added_chunk_no_longer_pays() -> None:
    # demand for ~180 k sat beyond the balance: a third 100 k chunk would earn nothing
    sink = chan(1, 4_000_000, 0.02, fee_ppm=312)
    sources = [chan(n, 4_000_000, 0.9) for n in (2, 3, 4, 5)]
    rows = forwards_out(sink, sources, [k * 0.7 for k in range(1, 20)], random.Random(3))
    worked = _into_sink(True, hours_ago=13)
    [proposal] = proposals(plan([sink, *sources], rows, attempts=[worked]))
    gained = proposal.inputs["evaluation"]["dest_extra_volume_msat"]
    assert proposal.amount_msat - proposal.chunk_msat < gained  # the last chunk still sells


def test_repeated_chunks_fit_the_budget_as_one_reservation() -> None:
    channels, rows = busy_sink_node()
    worked = _into_sink(True, hours_ago=13)
    [free] = proposals(plan(channels, rows, attempts=[worked]))
    tight = ledger(budget_sat=free.max_cost_msat // SAT - 1)
    [fitted] = proposals(plan(channels, rows, book=tight, attempts=[worked]))
    assert fitted.max_cost_msat <= tight.budget_msat < free.max_cost_msat
    assert fitted.amount_msat < free.amount_msat


def test_two_runs_at_once_never_reserve_more_than_the_day_holds_with_repeated_chunks() -> None:
    """The second run plans after the first one's reservations (the writer lock orders them):
    repeated chunks reserve their whole worst case, so the two together stay in budget."""
    channels, rows = busy_sink_node()
    other = chan(7, 2_000_000, 0.05, fee_ppm=312)
    rows += forwards_out(other, channels[1:], [k * 0.23 for k in range(1, 61)], random.Random(4))
    everything = [*channels, other]
    worked = [
        _into_sink(True, hours_ago=13),
        _into_sink(True, hours_ago=13).model_copy(
            update={"attempt_id": "b13", "dest_scid": other.scid}
        ),
    ]
    first_alone = proposals(plan(everything, rows, attempts=worked))
    assert len(first_alone) == 2 and all(p.chunks > 1 for p in first_alone)
    budget_sat = (first_alone[0].max_cost_msat + first_alone[1].max_cost_msat) // SAT * 2 // 3
    book = ledger(budget_sat=budget_sat)
    first = proposals(
        plan(
            everything,
            rows,
            book=book,
            attempts=worked,
            config=RebalanceConfig(max_attempts_per_run=1),
        )
    )
    held = [
        Reservation(
            attempt_id=p.attempt_id,
            node_id=NODE,
            max_fee_msat=p.max_cost_msat,
            reserved_at=NOW,
            scid=p.dest_scid,
        )
        for p in first
    ]
    second = proposals(
        plan(
            everything, rows, book=ledger(budget_sat=budget_sat, reservations=held), attempts=worked
        )
    )
    assert first and second  # the second run still found money, for a smaller pull
    assert not {p.dest_scid for p in first} & {p.dest_scid for p in second}
    total = sum(p.max_cost_msat for p in [*first, *second])
    assert total <= budget_sat * SAT
