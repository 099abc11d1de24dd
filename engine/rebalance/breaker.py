"""The futility breaker: backoff, suspension, multi-channel peers and ping-pong (pure).

Users' second complaint about every rebalancer is loops that burn fees without moving
liquidity (sling#11 with several channels to one peer, rebalance-lnd#184's left↔right loop)
and the third is automation that silently stops. So: each failure doubles a channel's wait
(with the sling reasons kept, because NoCheapRoute means "maxppm too low" and NoCandidates
"nothing to pull from", which an operator fixes differently); a success resets it; a channel
that keeps failing is suspended for a fixed time with a sentence saying why, and comes back on
its own rather than vanishing. The state is a fold over the rebalance_attempts rows, so the
flow stores no separate breaker table.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    MSAT_PER_SAT,
    AttemptRecord,
    BreakerState,
    ChannelBreaker,
    RebalanceChannel,
    RebalanceTuning,
    SkipReason,
)


def backoff_s(consecutive_failures: int, tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING) -> int:
    """Wait after the n-th straight failure: base × 2^(n−1), capped; 0 after a success."""
    if consecutive_failures <= 0:
        return 0
    exponent = min(consecutive_failures - 1, 62)  # 2**62 s already dwarfs any cap
    return min(tuning.backoff_cap_s, tuning.backoff_base_s * 2**exponent)


def record_attempt(
    state: BreakerState,
    attempt: AttemptRecord,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> BreakerState:
    """The breaker after one finished attempt on `attempt.dest_scid`."""
    scid = attempt.dest_scid
    if attempt.succeeded:
        channel = ChannelBreaker(scid=scid)
    else:
        before = state.get(scid)
        failures = before.consecutive_failures + 1
        reason = attempt.failure_reason or "unknown"
        reasons = (*before.recent_reasons, reason)[-tuning.keep_failure_reasons :]
        at = attempt.finished_at
        suspended_until = before.suspended_until
        suspended_reason = before.suspended_reason
        if failures >= tuning.suspend_after_failures:
            suspended_until = at + timedelta(seconds=tuning.suspend_s)
            suspended_reason = (
                f"{scid} suspended until {suspended_until:%Y-%m-%d %H:%M} UTC after {failures} "
                f"consecutive failed rebalances ({summarize_reasons(reasons)}); a success or "
                f"resume_channel (`hiveops policy rebalance resume --scid {scid}`) clears it"
            )
        channel = ChannelBreaker(
            scid=scid,
            consecutive_failures=failures,
            last_failure_at=at,
            retry_at=at + timedelta(seconds=backoff_s(failures, tuning)),
            recent_reasons=reasons,
            suspended_until=suspended_until,
            suspended_reason=suspended_reason,
        )
    return BreakerState(channels={**state.channels, scid: channel})


def breaker_from_attempts(
    attempts: Iterable[AttemptRecord],
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
    *,
    resumes: Mapping[str, datetime] | None = None,
) -> BreakerState:
    """Replay finished attempts in time order (ties by attempt_id, for determinism).

    `resumes` (scid → an operator's latest `hiveops rebalance resume`): the channel's breaker is
    reset at that instant, so only attempts finished after it count against the channel."""
    state = BreakerState()
    pending = dict(resumes or {})
    for attempt in sorted(attempts, key=lambda a: (a.finished_at, a.attempt_id)):
        at = pending.get(attempt.dest_scid)
        if at is not None and attempt.finished_at > at:
            state = resume_channel(state, attempt.dest_scid)
            del pending[attempt.dest_scid]
        state = record_attempt(state, attempt, tuning)
    for scid in pending:
        state = resume_channel(state, scid)
    return state


def resume_channel(state: BreakerState, scid: str) -> BreakerState:
    """An operator's explicit reset (after fixing the cause: maxppm, peer, channel state)."""
    return BreakerState(channels={**state.channels, scid: ChannelBreaker(scid=scid)})


def breaker_block(state: BreakerState, scid: str, now: datetime) -> tuple[SkipReason, str] | None:
    """Why `scid` may not be rebalanced now, or None."""
    channel = state.get(scid)
    if channel.suspended_until is not None and now < channel.suspended_until:
        return SkipReason.SUSPENDED, channel.suspended_reason or f"{scid} is suspended"
    if channel.retry_at is not None and now < channel.retry_at:
        wait_s = (channel.retry_at - now).total_seconds()
        return SkipReason.BREAKER_BACKOFF, (
            f"{channel.consecutive_failures} consecutive failure(s) "
            f"({summarize_reasons(channel.recent_reasons)}); next try in {wait_s / 3600:.1f} h "
            f"at {channel.retry_at:%Y-%m-%d %H:%M} UTC"
        )
    return None


def summarize_reasons(reasons: Iterable[str]) -> str:
    """'NoRoutes ×3, NoCheapRoute ×1', most frequent first (ties alphabetically)."""
    counts = Counter(reasons)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} ×{count}" for reason, count in ordered) or "no reason recorded"


def multi_channel_peers(channels: Iterable[RebalanceChannel]) -> dict[str, tuple[str, ...]]:
    """Peers we hold two or more channels with: peer_id → their scids, sorted.

    A pull from one into another pays a circular route to end where it began: the peer's
    total liquidity toward us is unchanged, and CLN forwards non-strictly over any channel to
    the peer, so the "depleted" one was never the bottleneck (sling#11).
    """
    by_peer: dict[str, list[str]] = defaultdict(list)
    for channel in channels:
        by_peer[channel.peer_id].append(channel.scid)
    return {peer: tuple(sorted(scids)) for peer, scids in by_peer.items() if len(scids) > 1}


def ping_pong_reason(
    scid: str,
    *,
    as_destination: bool,
    attempts: Iterable[AttemptRecord],
    now: datetime,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> str | None:
    """Why using `scid` in this role would reverse a recent move, or None.

    As a destination: liquidity was pulled *out of* it (it was a source) within the window.
    As a source: liquidity was pulled *into* it within the window. Either way the earlier fee
    bought nothing; judged per channel rather than per pair, so A→B, B→C, C→A loops are caught
    as well as A→B, B→A.
    """
    since = now - timedelta(seconds=tuning.ping_pong_window_s)
    days = tuning.ping_pong_window_s / 86_400
    for attempt in sorted(attempts, key=lambda a: (a.finished_at, a.attempt_id), reverse=True):
        if not attempt.succeeded or not since <= attempt.finished_at <= now:
            continue
        moved_sat = attempt.moved_msat // MSAT_PER_SAT
        when = f"{attempt.finished_at:%Y-%m-%d %H:%M} UTC"
        if as_destination and attempt.source_scid == scid:
            return (
                f"{scid} gave {moved_sat} sat to {attempt.dest_scid} at {when} "
                f"({attempt.attempt_id}); refilling it within {days:g} d pays twice to stand still"
            )
        if not as_destination and attempt.dest_scid == scid:
            return (
                f"{scid} was refilled with {moved_sat} sat at {when} ({attempt.attempt_id}); "
                f"draining it again within {days:g} d pays twice to stand still"
            )
    return None


def route_floor_ppm(
    scid: str,
    attempts: Iterable[AttemptRecord],
    now: datetime,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> tuple[int, AttemptRecord] | None:
    """The highest maxppm at which sling recently found no route into `scid` cheap enough.

    A NoCheapRoute failure at maxppm X says routes into the channel cost more than X; trying
    again at X or below only repeats it. Forgotten after `route_memory_s` (gossip and
    liquidity change), and cleared by any later success into the channel.
    """
    since = now - timedelta(seconds=tuning.route_memory_s)
    floor: tuple[int, AttemptRecord] | None = None
    for attempt in sorted(attempts, key=lambda a: (a.finished_at, a.attempt_id)):
        if attempt.dest_scid != scid or attempt.finished_at < since:
            continue
        if attempt.succeeded:
            floor = None
        elif (
            attempt.maxppm is not None
            and "NoCheapRoute" in (attempt.failure_reason or "")
            and (floor is None or attempt.maxppm >= floor[0])
        ):
            floor = (attempt.maxppm, attempt)
    return floor
