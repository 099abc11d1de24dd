"""The daily rebalance budget: combination rule, ledger from facts, reservations, crash recovery."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from engine.rebalance import (
    LedgerError,
    apply_reconcile,
    available_msat,
    build_ledger,
    daily_budget_msat,
    reconcile,
    release,
    reserve,
    settle,
)
from models.budget import BudgetLedger, Refusal, RefusalReason, Reservation
from models.rebalance import JobObservation, JobStatus, ReconcileKind
from models.settings import BudgetConfig

NODE = "02" + "a" * 64
DAY = date(2026, 2, 10)
NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
SAT = 1_000


def ledger(budget_sat: int = 100, **kw: object) -> BudgetLedger:
    fields: dict[str, object] = {
        "node_id": NODE,
        "day": DAY,
        "budget_msat": budget_sat * SAT,
        "fixed_budget_msat": budget_sat * SAT,
        "earnings_budget_msat": budget_sat * SAT,
        "earned_msat": 0,
        "trailing_earned_msat": 0,
        "earnings_window_days": 7,
    }
    fields.update(kw)
    return BudgetLedger.model_validate(fields)


def held(attempt_id: str, max_fee_sat: int, minutes_ago: float = 0, scid: str = "1x1x1"):
    return Reservation(
        attempt_id=attempt_id,
        node_id=NODE,
        max_fee_msat=max_fee_sat * SAT,
        reserved_at=NOW - timedelta(minutes=minutes_ago),
        scid=scid,
    )


# --- combination rule ------------------------------------------------------------------------


def test_budget_is_the_smaller_of_fixed_cap_and_earnings_share() -> None:
    config = BudgetConfig(daily_budget_sat=2_000, share_of_earnings=0.5, earnings_window_days=7)
    # The audited node: ~318 sat earned in 7 days → half of it per day is ~22.7 sat, not 2,000.
    budget, fixed, earnings = daily_budget_msat(config, 318_000)
    assert (budget, fixed, earnings) == (22_714, 2_000_000, 22_714)
    # A node earning 70 k sat a week is held to the fixed cap.
    assert daily_budget_msat(config, 70_000_000)[0] == 2_000_000


def test_a_node_without_earnings_gets_only_the_seed_and_zero_cap_switches_off() -> None:
    assert daily_budget_msat(BudgetConfig(), 0)[0] == 10_000
    assert daily_budget_msat(BudgetConfig(daily_budget_sat=0), 10**12)[0] == 0


def test_ledger_is_built_from_facts_not_left_at_zero() -> None:
    """The audit's budget table read 0 on every row; here each column comes from a fact."""
    day_start = datetime(2026, 2, 10, tzinfo=UTC)
    forwards = pl.DataFrame(
        {
            "out_channel": ["a", "a", "a", "a"],
            "out_msat": [1] * 4,
            "fee_msat": [70_000, 140_000, 5_000, 999_999],
            "status": ["settled", "settled", "settled", "failed"],
            "resolved_at": [
                day_start - timedelta(days=3),
                day_start - timedelta(days=6, hours=23),
                day_start + timedelta(hours=2),
                day_start - timedelta(days=1),
            ],
        }
    )
    costs = pl.DataFrame(
        {"occurred_at": [day_start + timedelta(hours=1)], "amount_msat": [3_000_000]}
    )
    fees = pl.DataFrame(
        {
            "paid_at": [day_start + timedelta(hours=3), day_start - timedelta(hours=1)],
            "fee_msat": [4_000, 8_000],
        }
    )
    built = build_ledger(
        NODE,
        DAY,
        forwards=forwards,
        onchain_costs=costs,
        rebalance_fees=fees,
        reservations=[held("r1", 2)],
        config=BudgetConfig(),
    )
    assert built.trailing_earned_msat == 210_000
    assert built.earned_msat == 5_000
    assert built.budget_msat == 15_000  # 0.5 × 210 sat / 7 days
    assert built.rebalance_spent_msat == 4_000
    assert built.onchain_spent_msat == 3_000_000
    assert built.reserved_msat == 2_000
    assert available_msat(built) == 0  # an on-chain cost already spent the day


# --- reserve / settle / release --------------------------------------------------------------


def test_reserve_takes_money_and_refuses_what_is_not_there() -> None:
    book, first = reserve(ledger(100), "a1", 60 * SAT, now=NOW, scid="1x1x1")
    assert isinstance(first, Reservation) and first.scid == "1x1x1"
    assert available_msat(book) == 40 * SAT
    unchanged, refused = reserve(book, "a2", 41 * SAT, now=NOW)
    assert isinstance(refused, Refusal)
    assert refused.reason is RefusalReason.BUDGET_EXHAUSTED
    assert refused.available_msat == 40 * SAT
    assert "41 sat" in refused.detail and "40 sat" in refused.detail
    assert unchanged == book


def test_reserve_is_idempotent_per_attempt() -> None:
    book, first = reserve(ledger(100), "a1", 60 * SAT, now=NOW)
    again, second = reserve(book, "a1", 60 * SAT, now=NOW + timedelta(minutes=5))
    assert second == first and again == book


def test_settle_books_the_fee_and_frees_the_rest() -> None:
    book, reservation = reserve(ledger(100), "a1", 60 * SAT, now=NOW)
    assert isinstance(reservation, Reservation)
    book, settled = settle(book, reservation, 12 * SAT)
    assert settled.released_msat == 48 * SAT and settled.overspend_msat == 0
    assert book.rebalance_spent_msat == 12 * SAT and book.reserved_msat == 0
    assert available_msat(book) == 88 * SAT


def test_a_fee_above_its_reservation_is_booked_and_reported() -> None:
    book, reservation = reserve(ledger(100), "a1", 10 * SAT, now=NOW)
    assert isinstance(reservation, Reservation)
    book, settled = settle(book, reservation, 15 * SAT)
    assert settled.overspend_msat == 5 * SAT and book.rebalance_spent_msat == 15 * SAT


def test_release_returns_the_money_and_double_closing_is_an_error() -> None:
    book, reservation = reserve(ledger(100), "a1", 60 * SAT, now=NOW)
    assert isinstance(reservation, Reservation)
    book = release(book, reservation)
    assert available_msat(book) == 100 * SAT
    with pytest.raises(LedgerError, match="settled or released already"):
        settle(book, reservation, 1)
    with pytest.raises(LedgerError):
        release(book, reservation)


@pytest.mark.parametrize("seed", range(25))
def test_spent_plus_reserved_never_exceeds_budget_under_random_operations(seed: int) -> None:
    rng = random.Random(seed)
    book = ledger(rng.choice([0, 1, 10, 50, 500]))
    open_: list[Reservation] = []
    for step in range(300):
        action = rng.random()
        if action < 0.5 or not open_:
            book, result = reserve(book, f"a{step}", rng.randint(0, 80) * SAT, now=NOW)
            if isinstance(result, Reservation):
                open_.append(result)
        elif action < 0.8:
            target = open_.pop(rng.randrange(len(open_)))
            book, _ = settle(book, target, rng.randint(0, target.max_fee_msat))
        else:
            book = release(book, open_.pop(rng.randrange(len(open_))))
        assert book.spent_msat + book.reserved_msat <= book.budget_msat, f"step {step}"
        assert book.reserved_msat == sum(r.max_fee_msat for r in open_)
        assert available_msat(book) >= 0


@pytest.mark.parametrize("seed", range(10))
def test_outside_costs_never_make_reservations_grow_past_what_is_left(seed: int) -> None:
    """On-chain costs are facts we cannot refuse; once they exceed the budget nothing is
    reserved, and reservations never exceed what was left when they were made."""
    rng = random.Random(1_000 + seed)
    book = ledger(100)
    for step in range(200):
        if rng.random() < 0.1:
            cost = book.onchain_spent_msat + rng.randint(0, 30) * SAT
            book = book.model_copy(update={"onchain_spent_msat": cost})
            continue
        left = available_msat(book)
        book, result = reserve(book, f"a{step}", rng.randint(1, 40) * SAT, now=NOW)
        if isinstance(result, Reservation):
            assert result.max_fee_msat <= left
        else:
            assert result.requested_msat > left
        if book.reservations and rng.random() < 0.5:
            book = release(book, book.reservations[0])
        if book.spent_msat >= book.budget_msat:
            assert available_msat(book) == 0


# --- reconcile after a crash -----------------------------------------------------------------


def test_reconcile_decides_every_kind_of_leftover_reservation() -> None:
    leftovers = [
        held("paid", 20, minutes_ago=30),
        held("gone", 20, minutes_ago=30),
        held("failed", 20, minutes_ago=30),
        held("partial", 20, minutes_ago=30),
        held("young", 20, minutes_ago=10),
        held("stale", 20, minutes_ago=180),
        held("stale_paid", 20, minutes_ago=180),
        held("unseen", 20, minutes_ago=30),
        held("paid_unknown", 20, minutes_ago=30),
    ]
    observed = {
        "paid": JobObservation(attempt_id="paid", status=JobStatus.SUCCEEDED, fee_msat=7 * SAT),
        "gone": JobObservation(attempt_id="gone", status=JobStatus.GONE),
        "failed": JobObservation(
            attempt_id="failed", status=JobStatus.FAILED, failure_reason="NoRoutes"
        ),
        "partial": JobObservation(attempt_id="partial", status=JobStatus.FAILED, fee_msat=3 * SAT),
        "young": JobObservation(attempt_id="young", status=JobStatus.RUNNING),
        "stale": JobObservation(attempt_id="stale", status=JobStatus.RUNNING),
        "stale_paid": JobObservation(
            attempt_id="stale_paid", status=JobStatus.RUNNING, fee_msat=2 * SAT
        ),
        "paid_unknown": JobObservation(attempt_id="paid_unknown", status=JobStatus.SUCCEEDED),
    }
    actions = {a.attempt_id: a for a in reconcile(leftovers, observed, NOW, ttl_s=3_600)}
    kinds = {attempt: action.kind for attempt, action in actions.items()}
    assert kinds == {
        "paid": ReconcileKind.SETTLE,
        "gone": ReconcileKind.RELEASE,
        "failed": ReconcileKind.RELEASE,
        "partial": ReconcileKind.SETTLE,
        "young": ReconcileKind.KEEP,
        "stale": ReconcileKind.STOP_AND_RELEASE,
        "stale_paid": ReconcileKind.STOP_AND_SETTLE,
        "unseen": ReconcileKind.RELEASE,
        "paid_unknown": ReconcileKind.SETTLE,
    }
    assert actions["paid"].fee_msat == 7 * SAT and not actions["paid"].fee_is_estimate
    assert actions["paid_unknown"].fee_msat == 20 * SAT and actions["paid_unknown"].fee_is_estimate
    assert "NoRoutes" in actions["failed"].reason
    assert all(a.scid == "1x1x1" and a.reason for a in actions.values())


def test_a_crashed_run_s_reservations_are_settled_or_released_on_the_next_run() -> None:
    # Run 1 reserves three attempts and dies before recording anything.
    book = ledger(100)
    made: list[Reservation] = []
    for attempt in ("r1", "r2", "r3"):
        book, result = reserve(book, attempt, 30 * SAT, now=NOW - timedelta(hours=3))
        assert isinstance(result, Reservation)
        made.append(result)
    assert available_msat(book) == 10 * SAT
    # Run 2 rebuilds the ledger from the reservation rows and asks sling what happened.
    fresh = ledger(100, reservations=tuple(made))
    observed = {
        "r1": JobObservation(attempt_id="r1", status=JobStatus.SUCCEEDED, fee_msat=4 * SAT),
        "r2": JobObservation(attempt_id="r2", status=JobStatus.GONE),
        "r3": JobObservation(attempt_id="r3", status=JobStatus.RUNNING),
    }
    actions = reconcile(fresh.reservations, observed, NOW, ttl_s=3_600)
    assert [a.kind for a in actions] == [
        ReconcileKind.SETTLE,
        ReconcileKind.RELEASE,
        ReconcileKind.STOP_AND_RELEASE,
    ]
    after = apply_reconcile(fresh, actions)
    assert after.reservations == ()
    assert after.rebalance_spent_msat == 4 * SAT
    assert available_msat(after) == 96 * SAT


def test_reconcile_keeps_running_jobs_and_apply_leaves_them_open() -> None:
    fresh = ledger(100, reservations=(held("r1", 30, minutes_ago=5),))
    observed = {"r1": JobObservation(attempt_id="r1", status=JobStatus.RUNNING)}
    actions = reconcile(fresh.reservations, observed, NOW)
    assert [a.kind for a in actions] == [ReconcileKind.KEEP]
    assert apply_reconcile(fresh, actions) == fresh
