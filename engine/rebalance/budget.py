"""The daily rebalance budget: ledger from facts, reserve / settle / release, crash recovery (pure).

Combination rule: budget = min(fixed cap, max(seed, share_of_earnings × trailing daily
earnings)). The minimum, not the maximum, because the field complaint is spend that outruns
earnings (CLBOSS spent 2–10× what it earned; the audited node earned 955 sat in three weeks
and a fixed 2,000 sat/day would have let it spend 40× that): the fixed cap bounds a bad day,
the earnings share keeps spend a fraction of what routing brings in. The seed (10 sat/day,
CLBOSS's "free fee" for new nodes) lets a node with no earnings yet try a few cheap pulls
instead of never learning; a fixed cap of 0 still switches rebalancing off. Trailing earnings
are the completed days before `day`, so the budget does not move within the day it governs.

Concurrency: `reserve` is one pure check-and-reserve step. The flow reads the ledger's inputs,
calls it and writes the reservation row inside one warehouse transaction, so two runs cannot
both see the same money as available.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from engine.fees.frames import FORWARD_REQUIRED, FORWARD_SCHEMA, UTC_TIMESTAMP, conform
from models.budget import BudgetLedger, Refusal, RefusalReason, Reservation, Settlement
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    MSAT_PER_SAT,
    JobObservation,
    JobStatus,
    RebalanceTuning,
    ReconcileAction,
    ReconcileKind,
)
from models.settings import BudgetConfig

# On-chain costs (warehouse onchain_costs) and paid rebalance fees (rebalance_attempts rows
# with a fee, keyed by when it was paid).
ONCHAIN_COST_SCHEMA: dict[str, pl.DataType] = {
    "occurred_at": UTC_TIMESTAMP,
    "amount_msat": pl.Int64(),
}
REBALANCE_FEE_SCHEMA: dict[str, pl.DataType] = {
    "paid_at": UTC_TIMESTAMP,
    "fee_msat": pl.Int64(),
}


class LedgerError(ValueError):
    """An operation on a reservation the ledger does not hold (already settled or released)."""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def daily_budget_msat(
    config: BudgetConfig,
    trailing_earned_msat: int,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> tuple[int, int, int]:
    """(budget, fixed part, earnings part) in msat, by the module's combination rule."""
    fixed = config.daily_budget_sat * MSAT_PER_SAT
    earnings = int(config.share_of_earnings * trailing_earned_msat / config.earnings_window_days)
    return min(fixed, max(tuning.seed_budget_msat, earnings)), fixed, earnings


def build_ledger(
    node_id: str,
    day: date,
    *,
    forwards: pl.DataFrame,
    onchain_costs: pl.DataFrame | None = None,
    rebalance_fees: pl.DataFrame | None = None,
    reservations: Iterable[Reservation] = (),
    config: BudgetConfig,
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
) -> BudgetLedger:
    """One node's ledger for `day` (UTC) from warehouse facts and its open reservations.

    `forwards` needs the node's settled forwards back to `earnings_window_days` before `day`;
    `onchain_costs` and `rebalance_fees` (None = none) the day's costs; open reservations of
    earlier days count too (their money is still at risk).
    """
    start, end = day_bounds(day)
    trailing_start = start - timedelta(days=config.earnings_window_days)
    settled = conform(forwards, FORWARD_SCHEMA, FORWARD_REQUIRED, "forwards").filter(
        (pl.col("status") == "settled") & pl.col("resolved_at").is_not_null()
    )
    trailing = _sum_between(settled, "resolved_at", "fee_msat", trailing_start, start)
    budget, fixed, earnings = daily_budget_msat(config, trailing, tuning)
    costs = _typed(onchain_costs, ONCHAIN_COST_SCHEMA, "onchain_costs (ONCHAIN_COST_SCHEMA)")
    fees = _typed(rebalance_fees, REBALANCE_FEE_SCHEMA, "rebalance_fees (REBALANCE_FEE_SCHEMA)")
    return BudgetLedger(
        node_id=node_id,
        day=day,
        budget_msat=budget,
        fixed_budget_msat=fixed,
        earnings_budget_msat=earnings,
        earned_msat=_sum_between(settled, "resolved_at", "fee_msat", start, end),
        trailing_earned_msat=trailing,
        earnings_window_days=config.earnings_window_days,
        rebalance_spent_msat=_sum_between(fees, "paid_at", "fee_msat", start, end),
        onchain_spent_msat=_sum_between(costs, "occurred_at", "amount_msat", start, end),
        reservations=tuple(sorted(reservations, key=lambda r: (r.reserved_at, r.attempt_id))),
    )


def _typed(frame: pl.DataFrame | None, schema: dict[str, pl.DataType], what: str) -> pl.DataFrame:
    if frame is None:
        return pl.DataFrame(schema=schema)
    return conform(frame, schema, tuple(schema), what)


def _sum_between(frame: pl.DataFrame, at: str, amount: str, start: datetime, end: datetime) -> int:
    part = frame.filter((pl.col(at) >= start) & (pl.col(at) < end))
    return int(part[amount].fill_null(0).sum())


def available_msat(ledger: BudgetLedger) -> int:
    """Money a new reservation may take: never negative, 0 once outside costs broke the cap."""
    return max(0, ledger.budget_msat - ledger.spent_msat - ledger.reserved_msat)


def reserve(
    ledger: BudgetLedger,
    attempt_id: str,
    max_fee_msat: int,
    *,
    now: datetime,
    scid: str | None = None,
) -> tuple[BudgetLedger, Reservation | Refusal]:
    """Check and reserve in one step: the new ledger and the reservation, or a refusal.

    Idempotent per attempt_id (a retried task gets its existing reservation back), so the
    flow can re-run after a crash without double-booking.
    """
    if max_fee_msat < 0:
        raise ValueError(f"attempt {attempt_id}: max_fee_msat={max_fee_msat} is negative")
    for existing in ledger.reservations:
        if existing.attempt_id == attempt_id:
            return ledger, existing
    available = available_msat(ledger)
    if max_fee_msat > available:
        return ledger, Refusal(
            attempt_id=attempt_id,
            reason=RefusalReason.BUDGET_EXHAUSTED,
            detail=(
                f"worst-case fee {max_fee_msat / MSAT_PER_SAT:g} sat exceeds the "
                f"{available / MSAT_PER_SAT:g} sat left of {ledger.day}'s "
                f"{ledger.budget_msat / MSAT_PER_SAT:g} sat budget (spent "
                f"{ledger.spent_msat / MSAT_PER_SAT:g}, reserved "
                f"{ledger.reserved_msat / MSAT_PER_SAT:g})"
            ),
            available_msat=available,
            requested_msat=max_fee_msat,
        )
    reservation = Reservation(
        attempt_id=attempt_id,
        node_id=ledger.node_id,
        max_fee_msat=max_fee_msat,
        reserved_at=now,
        scid=scid,
    )
    updated = ledger.model_copy(update={"reservations": (*ledger.reservations, reservation)})
    return updated, reservation


def settle(
    ledger: BudgetLedger, reservation: Reservation, actual_fee_msat: int
) -> tuple[BudgetLedger, Settlement]:
    """Close a reservation with the fee actually paid; the fee is booked even above the cap."""
    if actual_fee_msat < 0:
        raise ValueError(f"attempt {reservation.attempt_id}: fee {actual_fee_msat} is negative")
    held, rest = _take(ledger, reservation.attempt_id)
    updated = ledger.model_copy(
        update={
            "reservations": rest,
            "rebalance_spent_msat": ledger.rebalance_spent_msat + actual_fee_msat,
        }
    )
    return updated, Settlement(
        attempt_id=held.attempt_id,
        reserved_msat=held.max_fee_msat,
        fee_msat=actual_fee_msat,
        released_msat=max(0, held.max_fee_msat - actual_fee_msat),
        overspend_msat=max(0, actual_fee_msat - held.max_fee_msat),
    )


def release(ledger: BudgetLedger, reservation: Reservation) -> BudgetLedger:
    """Return a reservation's money: the attempt paid nothing (failed, gone, never started)."""
    _, rest = _take(ledger, reservation.attempt_id)
    return ledger.model_copy(update={"reservations": rest})


def _take(ledger: BudgetLedger, attempt_id: str) -> tuple[Reservation, tuple[Reservation, ...]]:
    held = [r for r in ledger.reservations if r.attempt_id == attempt_id]
    if not held:
        raise LedgerError(
            f"ledger {ledger.node_id} {ledger.day} holds no open reservation {attempt_id!r}; "
            f"it was settled or released already (check rebalance_attempts)"
        )
    return held[0], tuple(r for r in ledger.reservations if r.attempt_id != attempt_id)


def reconcile(
    open_reservations: Iterable[Reservation],
    known_job_states: Mapping[str, JobObservation],
    now: datetime,
    *,
    ttl_s: int = DEFAULT_REBALANCE_TUNING.reservation_ttl_s,
) -> list[ReconcileAction]:
    """What to do with reservations a previous (possibly crashed) run left open.

    A known fee always settles (a failed job may have paid for the chunks it did move); a
    success without a recorded fee settles at the reserved maximum, flagged as an estimate,
    because losing a paid fee is how the audit's budget read 0. A job that is gone or failed
    without a fee is released. A job still running is kept until `ttl_s`, then stopped and its
    reservation closed: an in-flight payment finishing during sling-stop is bounded by maxppm and
    is booked from sling's success log when the ledger is next built.
    """
    actions = []
    for held in sorted(open_reservations, key=lambda r: (r.reserved_at, r.attempt_id)):
        age_s = (now - held.reserved_at).total_seconds()
        kind, reason, fee, estimate = _verdict(
            held, known_job_states.get(held.attempt_id), age_s, ttl_s
        )
        actions.append(
            ReconcileAction(
                attempt_id=held.attempt_id,
                kind=kind,
                scid=held.scid,
                fee_msat=fee,
                fee_is_estimate=estimate,
                reason=reason,
            )
        )
    return actions


def _verdict(
    held: Reservation, seen: JobObservation | None, age_s: float, ttl_s: int
) -> tuple[ReconcileKind, str, int | None, bool]:
    if seen is None or seen.status is JobStatus.GONE:
        where = "no job state observed" if seen is None else "sling has no job or record"
        if seen is not None and seen.fee_msat is not None:
            return ReconcileKind.SETTLE, f"{where}; fee recorded", seen.fee_msat, False
        return ReconcileKind.RELEASE, f"{where}; no fee was paid", None, False
    if seen.status is JobStatus.RUNNING:
        if age_s <= ttl_s:
            return ReconcileKind.KEEP, f"running for {age_s:.0f} s (ttl {ttl_s} s)", None, False
        reason = f"still running after {age_s:.0f} s > ttl {ttl_s} s; stop the job"
        if seen.fee_msat:
            return ReconcileKind.STOP_AND_SETTLE, reason, seen.fee_msat, False
        return ReconcileKind.STOP_AND_RELEASE, reason, None, False
    if seen.fee_msat is not None:
        return ReconcileKind.SETTLE, f"job {seen.status}; fee recorded", seen.fee_msat, False
    if seen.status is JobStatus.SUCCEEDED:
        reason = "job succeeded but its fee is unknown; booked at the reserved maximum"
        return ReconcileKind.SETTLE, reason, held.max_fee_msat, True
    why = seen.failure_reason or "no reason given"
    return ReconcileKind.RELEASE, f"job failed ({why}); no fee was paid", None, False


def apply_reconcile(ledger: BudgetLedger, actions: Iterable[ReconcileAction]) -> BudgetLedger:
    """The ledger after the settle/release parts of `actions` (stops are the flow's to send)."""
    by_id = {r.attempt_id: r for r in ledger.reservations}
    for action in actions:
        held = by_id.get(action.attempt_id)
        if held is None or action.kind is ReconcileKind.KEEP:
            continue
        if action.kind in (ReconcileKind.SETTLE, ReconcileKind.STOP_AND_SETTLE):
            ledger, _ = settle(ledger, held, action.fee_msat or 0)
        else:
            ledger = release(ledger, held)
    return ledger
