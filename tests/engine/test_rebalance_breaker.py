"""The futility breaker: backoff and reset, suspension, multi-channel peers, ping-pong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.rebalance import (
    backoff_s,
    breaker_block,
    breaker_from_attempts,
    multi_channel_peers,
    ping_pong_reason,
    record_attempt,
    resume_channel,
)
from models.rebalance import (
    AttemptRecord,
    BreakerState,
    RebalanceChannel,
    RebalanceTuning,
    SkipReason,
)

NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SAT = 1_000
TUNING = RebalanceTuning()  # 1 h base, 48 h cap, suspend after 8 for 7 days


def attempt(
    n: int,
    *,
    ok: bool = False,
    dest: str = "11x1x0",
    source: str | None = None,
    at: datetime = NOW,
    reason: str | None = "NoRoutes",
    moved_sat: int = 0,
) -> AttemptRecord:
    return AttemptRecord(
        attempt_id=f"a{n:03d}",
        dest_scid=dest,
        source_scid=source,
        finished_at=at,
        succeeded=ok,
        failure_reason=None if ok else reason,
        moved_msat=moved_sat * SAT,
    )


def fail_times(count: int, reasons: tuple[str, ...] = ("NoRoutes",)) -> BreakerState:
    state = BreakerState()
    for i in range(count):
        failure = attempt(i, at=NOW - (count - i) * HOUR, reason=reasons[i % len(reasons)])
        state = record_attempt(state, failure)
    return state


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [backoff_s(n) // 3_600 for n in range(8)] == [0, 1, 2, 4, 8, 16, 32, 48]
    assert backoff_s(10_000) == TUNING.backoff_cap_s


def test_each_failure_pushes_the_next_try_further_out() -> None:
    waits = []
    state = BreakerState()
    for i in range(5):
        state = record_attempt(state, attempt(i))
        channel = state.get("11x1x0")
        assert channel.retry_at is not None
        waits.append((channel.retry_at - NOW) / HOUR)
    assert waits == [1, 2, 4, 8, 16]


def test_backoff_blocks_with_the_reasons_and_lifts_when_it_expires() -> None:
    state = record_attempt(BreakerState(), attempt(1, reason="NoCheapRoute"))
    state = record_attempt(state, attempt(2, reason="NoRoutes"))
    blocked = breaker_block(state, "11x1x0", NOW + HOUR)
    assert blocked is not None
    reason, detail = blocked
    assert reason is SkipReason.BREAKER_BACKOFF
    assert "2 consecutive failure(s)" in detail and "NoCheapRoute ×1" in detail
    assert breaker_block(state, "11x1x0", NOW + 2 * HOUR) is None
    assert breaker_block(state, "99x9x9", NOW) is None


def test_a_success_resets_the_breaker() -> None:
    state = fail_times(5)
    state = record_attempt(state, attempt(99, ok=True))
    channel = state.get("11x1x0")
    assert channel.consecutive_failures == 0 and channel.retry_at is None
    assert breaker_block(state, "11x1x0", NOW) is None
    state = record_attempt(state, attempt(100, at=NOW))
    assert state.get("11x1x0").retry_at == NOW + HOUR  # back to the base, not the old wait


def test_failure_reasons_are_kept_up_to_the_limit() -> None:
    reasons = ("NoRoutes", "NoCheapRoute", "HTLCcapped", "PeerNotReady", "NoCandidates")
    state = fail_times(12, reasons)
    kept = state.get("11x1x0").recent_reasons
    assert len(kept) == TUNING.keep_failure_reasons
    assert kept[-1] == reasons[11 % len(reasons)]


def test_a_channel_that_keeps_failing_is_suspended_with_a_readable_reason() -> None:
    state = fail_times(8, ("NoRoutes", "NoRoutes", "NoCheapRoute"))
    blocked = breaker_block(state, "11x1x0", NOW + 49 * HOUR)  # past any backoff
    assert blocked is not None
    reason, detail = blocked
    assert reason is SkipReason.SUSPENDED
    assert "after 8 consecutive failed rebalances" in detail
    assert "NoRoutes ×6, NoCheapRoute ×2" in detail
    assert "resume_channel" in detail
    # It comes back on its own after the suspension (never silently gone for good) …
    assert breaker_block(state, "11x1x0", NOW + timedelta(days=7)) is None
    # … or at once when the operator resumes it.
    assert breaker_block(resume_channel(state, "11x1x0"), "11x1x0", NOW) is None


def test_breaker_state_is_a_fold_over_attempts_in_time_order() -> None:
    history = [attempt(i, at=NOW - (5 - i) * HOUR, ok=(i == 2)) for i in range(5)]
    forward = breaker_from_attempts(history)
    backward = breaker_from_attempts(reversed(history))
    assert forward == backward
    assert forward.get("11x1x0").consecutive_failures == 2  # the two after the success


# --- loops ------------------------------------------------------------------------------------


def chan(scid: str, peer: str) -> RebalanceChannel:
    return RebalanceChannel(
        scid=scid,
        peer_id=peer,
        is_fleet=False,
        capacity_msat=10**9,
        local_msat=5 * 10**8,
        fee_ppm=100,
    )


def test_multi_channel_peers_are_detected() -> None:
    peer_a, peer_b = "03" + "a" * 64, "03" + "b" * 64
    channels = [chan("3x1x0", peer_a), chan("1x1x0", peer_a), chan("2x1x0", peer_b)]
    assert multi_channel_peers(channels) == {peer_a: ("1x1x0", "3x1x0")}


def test_refilling_a_channel_that_just_gave_liquidity_is_ping_pong() -> None:
    history = [attempt(1, ok=True, dest="BB", source="AA", at=NOW - 2 * HOUR, moved_sat=50_000)]
    reason = ping_pong_reason("AA", as_destination=True, attempts=history, now=NOW)
    assert reason is not None
    assert "AA gave 50000 sat to BB" in reason and "a001" in reason
    # and draining the channel that was just refilled is the same loop seen from the other end
    assert ping_pong_reason("BB", as_destination=False, attempts=history, now=NOW) is not None


def test_loops_are_caught_per_channel_so_three_way_cycles_are_too() -> None:
    history = [
        attempt(1, ok=True, dest="BB", source="AA", at=NOW - 3 * HOUR),
        attempt(2, ok=True, dest="CC", source="BB", at=NOW - 2 * HOUR),
    ]
    # C → A would close A → B → C → A: A gave liquidity recently, so refilling it is refused.
    assert ping_pong_reason("AA", as_destination=True, attempts=history, now=NOW) is not None


def test_failed_or_old_moves_are_not_ping_pong() -> None:
    history = [
        attempt(1, ok=False, dest="BB", source="AA", at=NOW - HOUR),
        attempt(2, ok=True, dest="BB", source="AA", at=NOW - timedelta(days=8)),
    ]
    assert ping_pong_reason("AA", as_destination=True, attempts=history, now=NOW) is None
    assert ping_pong_reason("BB", as_destination=False, attempts=history, now=NOW) is None
    assert ping_pong_reason("CC", as_destination=True, attempts=history, now=NOW) is None


def test_an_operator_resume_clears_the_rebuilt_breaker_and_later_failures_count_again() -> None:
    history = [attempt(i, at=NOW - (10 - i) * HOUR) for i in range(8)]
    assert breaker_block(breaker_from_attempts(history), "11x1x0", NOW) is not None
    resumed = breaker_from_attempts(history, resumes={"11x1x0": NOW - HOUR})
    assert breaker_block(resumed, "11x1x0", NOW) is None
    assert resumed.get("11x1x0").consecutive_failures == 0
    # one failure after the resume is one strike, not the ninth
    later = [*history, attempt(9, at=NOW - HOUR / 2)]
    again = breaker_from_attempts(later, resumes={"11x1x0": NOW - HOUR})
    assert again.get("11x1x0").consecutive_failures == 1
    # a resume before the failures changes nothing
    early = breaker_from_attempts(history, resumes={"11x1x0": NOW - 20 * HOUR})
    assert early.get("11x1x0").consecutive_failures == 8
