"""Reading a sling-once's result from sling's cumulative stats, and remembering route prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.rebalance.breaker import route_floor_ppm
from engine.rebalance.sling_state import SlingTotals, observe_job
from models.rebalance import AttemptRecord, JobStatus

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_success_is_the_difference_of_totals_in_msat() -> None:
    before = SlingTotals(rebalances=2, amount_sat=200_000, spent_sat=40, tried=5)
    after = SlingTotals(rebalances=3, amount_sat=300_000, spent_sat=61, tried=7, last_partner="x")
    seen = observe_job("a", before=before, after=after, has_job=False, state="Stopped")
    assert seen.status is JobStatus.SUCCEEDED
    assert seen.fee_msat == 21_000
    assert seen.moved_msat == 100_000_000


def test_repeated_route_failures_fail_the_job_with_sling_reasons() -> None:
    before = SlingTotals(tried=1)
    after = SlingTotals(tried=4, failure_reasons=("NoCheapRoute",))
    seen = observe_job("a", before=before, after=after, has_job=True, state="NoCheapRoute")
    assert seen.status is JobStatus.FAILED
    assert "NoCheapRoute" in (seen.failure_reason or "")
    assert "3 failed route attempt(s)" in (seen.failure_reason or "")


def test_a_job_still_trying_is_running_and_a_vanished_one_is_gone() -> None:
    base = SlingTotals()
    running = observe_job(
        "a", before=base, after=SlingTotals(tried=1), has_job=True, state="Rebalancing"
    )
    assert running.status is JobStatus.RUNNING
    gone = observe_job("a", before=base, after=base, has_job=False, state=None)
    assert gone.status is JobStatus.GONE


def test_no_baseline_means_a_running_job_is_stopped_not_credited() -> None:
    seen = observe_job(
        "a", before=None, after=SlingTotals(rebalances=9), has_job=True, state="Rebalancing"
    )
    assert seen.status is JobStatus.FAILED
    assert seen.fee_msat is None


def test_stats_parse_tolerates_null_windows() -> None:
    totals = SlingTotals.from_detail(
        {"successes_in_time_window": None, "failures_in_time_window": None}
    )
    assert totals == SlingTotals()


def _failed(at: datetime, maxppm: int, reason: str = "NoCheapRoute; 3 tries") -> AttemptRecord:
    return AttemptRecord(
        attempt_id=f"a{at:%d%H}",
        dest_scid="1x1x1",
        finished_at=at,
        succeeded=False,
        failure_reason=reason,
        maxppm=maxppm,
    )


def test_route_floor_is_the_highest_recent_no_cheap_route_price() -> None:
    attempts = [_failed(T0, 40), _failed(T0 + timedelta(hours=6), 60), _failed(T0, 500, "NoRoutes")]
    floor = route_floor_ppm("1x1x1", attempts, T0 + timedelta(days=1))
    assert floor is not None and floor[0] == 60
    assert route_floor_ppm("2x2x2", attempts, T0 + timedelta(days=1)) is None


def test_route_floor_is_forgotten_after_a_success_or_its_memory() -> None:
    ok = AttemptRecord(
        attempt_id="ok",
        dest_scid="1x1x1",
        finished_at=T0 + timedelta(hours=1),
        succeeded=True,
        maxppm=30,
    )
    assert route_floor_ppm("1x1x1", [_failed(T0, 40), ok], T0 + timedelta(days=1)) is None
    assert route_floor_ppm("1x1x1", [_failed(T0, 40)], T0 + timedelta(days=8)) is None
