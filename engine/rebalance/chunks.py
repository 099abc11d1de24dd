"""How big the next chunk into a channel is, and whether it may repeat (pure).

A chunk that failed for liquidity (a hop could not carry it, or no candidate had it to spare)
says the path holds less than that: the next try into the same channel is half of it, down to
the minimum attempt, instead of failing the same way until the breaker suspends the channel.
A chunk that moved says the path carries it: the next pull may run several chunks in one
sling-once, each one only if its own expected gain pays its worst-case fee (the planner checks)
and the budget holds them all (one reservation for the whole job).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from engine.rebalance.ev import evaluate_pull, spare_msat
from models.rebalance import (
    MSAT_PER_SAT,
    PPM,
    AttemptRecord,
    ChannelClass,
    PullEvaluation,
    RebalanceChannel,
    RebalanceTuning,
)
from models.settings import RebalanceConfig

# sling's reasons for a try that failed because liquidity was missing somewhere on the path
LIQUIDITY_FAILURES = ("TEMPORARY_CHANNEL_FAILURE", "NoCandidates", "insufficient")


def is_liquidity_failure(reason: str | None) -> bool:
    return reason is not None and any(word in reason for word in LIQUIDITY_FAILURES)


@dataclass(frozen=True)
class ChunkPlan:
    cap_msat: int | None  # the largest chunk to try now; None: no limit from history
    repeats: int  # chunks one job may run (1: a single chunk)
    detail: str


def chunk_plan(
    dest_scid: str, attempts: Iterable[AttemptRecord], tuning: RebalanceTuning
) -> ChunkPlan:
    """From the attempts into `dest_scid` since its last success (the most recent first)."""
    mine = sorted(
        (a for a in attempts if a.dest_scid == dest_scid),
        key=lambda a: (a.finished_at, a.attempt_id),
        reverse=True,
    )
    if mine and mine[0].succeeded and mine[0].moved_msat > 0:
        moved = mine[0].moved_msat // MSAT_PER_SAT
        return ChunkPlan(
            None,
            tuning.max_repeat_chunks,
            f"the last pull moved {moved} sat: up to {tuning.max_repeat_chunks} chunks",
        )
    floor_msat = tuning.min_amount_sat * MSAT_PER_SAT
    step_msat = tuning.amount_step_sat * MSAT_PER_SAT
    for attempt in mine:
        if attempt.succeeded:
            break
        chunk = attempt.chunk_or_amount_msat
        if chunk and is_liquidity_failure(attempt.failure_reason):
            cap = max(floor_msat, chunk // 2 // step_msat * step_msat)
            return ChunkPlan(
                cap,
                1,
                f"a {chunk // MSAT_PER_SAT} sat chunk failed for liquidity "
                f"({attempt.attempt_id}): next chunk {cap // MSAT_PER_SAT} sat",
            )
    return ChunkPlan(None, 1, "one chunk")


def repeat_chunks(
    dest: RebalanceChannel,
    dest_cls: ChannelClass,
    source: RebalanceChannel,
    source_cls: ChannelClass,
    one: PullEvaluation,
    *,
    need_msat: int,
    repeats: int,
    config: RebalanceConfig,
    tuning: RebalanceTuning,
) -> PullEvaluation:
    """The pull grown chunk by chunk at the first chunk's price while each added chunk's own
    gain (the gain at k chunks minus at k − 1) exceeds its worst-case fee by the minimum
    benefit, the destination still needs it and the source can spare it."""
    chunk = one.amount_msat
    spare = spare_msat(source, tuning)
    chunk_cost = math.ceil(chunk * one.maxppm / PPM)
    chosen = one
    for k in range(2, repeats + 1):
        total = k * chunk
        if total > need_msat or total > spare:
            break
        more = evaluate_pull(
            dest, dest_cls, source, source_cls, total, config, tuning, fixed_maxppm=one.maxppm
        )
        if more.gain_msat - chosen.gain_msat - chunk_cost < tuning.min_benefit_msat:
            break
        chosen = more.model_copy(
            update={
                "passes": True,
                "route_ppm": one.route_ppm,
                "chunk_msat": chunk,
                "detail": f"{k} chunks of {chunk // MSAT_PER_SAT} sat: {more.detail}",
            }
        )
    return chosen
