"""Predicted benefit: a per-type shrinkage estimate that learns from measured outcomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.advisor.predict import (
    PRIOR_FACTOR,
    calibration_halves,
    fit_calibration,
    format_calibration,
    predict,
    walk_forward,
    weighted_median,
)
from models.advisor import AdvisorConfig, Opportunity, OpportunityType, OwnerLoop
from tests.engine.test_advisor_scan import synthetic_fee_moves

START = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = AdvisorConfig()


def samples(
    pairs: list[tuple[int, int]], kind: str = "fee", start: datetime = START
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "opportunity_type": [kind] * len(pairs),
            "decided_at": [start + timedelta(hours=i) for i in range(len(pairs))],
            "raw_estimate_msat": [raw for raw, _ in pairs],
            "actual_benefit_msat": [actual for _, actual in pairs],
        },
        schema_overrides={"decided_at": pl.Datetime("us", "UTC")},
    )


def fee_opportunity(raw_msat: int, reason: str = "moved toward the market") -> Opportunity:
    return Opportunity(
        opportunity_type=OpportunityType.FEE,
        node_id="02" + "a" * 64,
        target="1x1x0",
        action="setchannel",
        action_params={},
        snapshot_metrics={"fee_ppm": 900},
        raw_estimate_msat=raw_msat,
        estimate_reason=reason,
        size=10,
        owner_loop=OwnerLoop.FEES,
    )


def test_without_outcomes_every_type_uses_the_prior() -> None:
    fitted = fit_calibration(pl.DataFrame(), CONFIG)
    assert set(fitted) == set(OpportunityType)
    assert all(c.factor == PRIOR_FACTOR and c.samples == 0 for c in fitted.values())
    assert all(c.confidence == CONFIG.prior_confidence for c in fitted.values())


def test_factor_converges_to_what_outcomes_really_earned() -> None:
    rng = random.Random(7)
    pairs = [(raw, round(0.1 * raw + rng.gauss(0, 200))) for raw in range(1_000, 41_000, 400)]
    fitted = fit_calibration(samples(pairs), CONFIG)[OpportunityType.FEE]
    assert fitted.samples == 100
    assert fitted.factor == pytest.approx(0.1, abs=0.02)
    assert fitted.confidence > CONFIG.prior_confidence
    assert fit_calibration(samples(pairs), CONFIG)[OpportunityType.REBALANCE].samples == 0


def test_the_factor_moves_from_the_prior_with_every_trusted_outcome() -> None:
    """Outcomes that all earned 0: k = (4 · 0.5 + n · 0) / (4 + n), so 3 outcomes already move
    it and 36 nearly reach 0; a before/after outcome counts a quarter of a controlled one."""
    few = fit_calibration(samples([(10_000, 0)] * 3), CONFIG)[OpportunityType.FEE]
    assert few.samples == 3 and few.factor == pytest.approx(2 / 7)
    many = fit_calibration(samples([(10_000, 0)] * 36), CONFIG)[OpportunityType.FEE]
    assert many.factor == pytest.approx(0.05)
    weak = samples([(10_000, 0)] * 4).with_columns(pl.lit("before_after").alias("method"))
    assert fit_calibration(weak, CONFIG)[OpportunityType.FEE].factor == pytest.approx(0.4)


def test_outcomes_against_the_estimates_sign_take_the_factor_to_zero_not_below() -> None:
    """Every outcome the opposite of its estimate: the evidence says the estimate tells nothing
    (k → 0), never that its sign should be turned around."""
    contrary = fit_calibration(samples([(10_000, -20_000)] * 36), CONFIG)[OpportunityType.FEE]
    assert contrary.factor == pytest.approx(0.05)
    assert predict(fee_opportunity(10_000), contrary).predicted_benefit_msat >= 0


def test_the_fees_loops_changes_centre_the_fee_prior_and_own_outcomes_decide() -> None:
    """30 scored changes earned 20% of the estimate: with no own outcome the fee factor starts
    near 0.2, not at 0.5; 40 own outcomes at 100% take it most of the way to 1; other types keep
    the plain prior."""
    changes = samples([(10_000, 2_000)] * 30).with_columns(pl.lit("did_unchanged").alias("method"))
    cold = fit_calibration(pl.DataFrame(), CONFIG, backtests=changes)
    assert cold[OpportunityType.FEE].samples == 0
    assert cold[OpportunityType.FEE].factor == pytest.approx((4 * 0.5 + 30 * 0.2) / 34)
    assert cold[OpportunityType.REBALANCE].factor == PRIOR_FACTOR
    own = samples([(10_000, 10_000)] * 40).with_columns(pl.lit("did_unchanged").alias("method"))
    warm = fit_calibration(own, CONFIG, backtests=changes)[OpportunityType.FEE]
    alone = fit_calibration(own, CONFIG)[OpportunityType.FEE]
    assert warm.samples == 40 and 0.9 < warm.factor < alone.factor < 1.0
    early = fit_calibration(own, CONFIG, before=START, backtests=changes)[OpportunityType.FEE]
    assert early.factor == PRIOR_FACTOR  # nothing decided before START teaches


def test_walk_forward_predicts_each_change_only_from_outcomes_measured_before_it() -> None:
    """Changes whose outcomes are 10% of the estimate, each measured 3 days after it: the
    first ones are predicted at the prior, later ones with a factor learned from those measured
    by then, so the second half's error is lower, and the halves report says so."""
    changes = (
        samples([(10_000, 1_000)] * 20)
        .with_columns(
            pl.lit("did_unchanged").alias("method"),
            decided_at=pl.datetime_range(
                START, START + timedelta(days=19), "1d", time_zone="UTC", eager=True
            ),
        )
        .with_columns(measured_at=pl.col("decided_at").dt.offset_by("3d"))
    )
    walked = walk_forward(changes, CONFIG)
    predicted = walked["predicted_benefit_msat"].to_list()
    assert predicted[:4] == [round(PRIOR_FACTOR * 10_000)] * 4  # nothing measured before day 4
    assert predicted[4] < predicted[3] and predicted[-1] < 2_000
    (row,) = calibration_halves(walked, START, START + timedelta(days=20), evidence="fee changes")
    assert row.improved and row.evidence == "fee changes"
    assert format_calibration([row])[0].lstrip().startswith("fee (fee changes)")
    assert walk_forward(changes.clear(), CONFIG).height == 0


def test_learning_ignores_outcomes_decided_after_now() -> None:
    data = samples([(10_000, 0)] * 10)
    fitted = fit_calibration(data, CONFIG, before=START)[OpportunityType.FEE]
    assert fitted.samples == 0 and fitted.factor == PRIOR_FACTOR


def test_zero_estimate_predicts_zero_and_says_why() -> None:
    calibration = fit_calibration(pl.DataFrame(), CONFIG)[OpportunityType.FEE]
    p = predict(fee_opportunity(0, "no settled forward out of 1x1x0 in 14 days"), calibration)
    assert p.predicted_benefit_msat == 0
    assert p.benefit_reason == "0: no settled forward out of 1x1x0 in 14 days"


def test_prediction_names_its_calibration_and_rejections_lower_confidence() -> None:
    calibration = fit_calibration(samples([(10_000, 2_000)] * 20), CONFIG)[OpportunityType.FEE]
    p = predict(fee_opportunity(50_000), calibration)
    assert p.predicted_benefit_msat == round(calibration.factor * 50_000)
    assert "fitted on 20 measured fee outcomes" in p.benefit_reason
    assert predict(fee_opportunity(50_000), calibration, 0.5).confidence == pytest.approx(
        p.confidence / 2
    )


def test_calibration_report_compares_first_and_second_half() -> None:
    first = samples([(10_000, 1_000)] * 4)
    second = samples([(10_000, 1_000)] * 4, start=START + timedelta(days=10))
    data = pl.concat([first, second]).with_columns(
        predicted_benefit_msat=pl.Series([5_000] * 4 + [1_500] * 4)
    )
    rows = calibration_halves(data, START, START + timedelta(days=20))
    assert len(rows) == 1
    fee = rows[0]
    assert (fee.first.samples, fee.second.samples) == (4, 4)
    assert fee.first.mean_abs_error_msat == 4_000 and fee.second.mean_abs_error_msat == 500
    assert fee.improved is True


def test_calibration_report_refuses_an_empty_period() -> None:
    with pytest.raises(ValueError, match="calibration period is empty"):
        calibration_halves(pl.DataFrame(), START, START)


def replay(raw_actual: list[tuple[int, int]], per_day: int = 3) -> pl.DataFrame:
    """Decide day by day as the advisor does: each prediction uses only outcomes of decisions
    made (and measured, 3 days later) before it."""
    rows: list[dict[str, object]] = []
    for i, (raw, actual) in enumerate(raw_actual):
        at = START + timedelta(days=i // per_day)
        known = samples([(r["raw_estimate_msat"], r["actual_benefit_msat"]) for r in rows])
        known = known.with_columns(pl.Series("decided_at", [r["decided_at"] for r in rows]))
        seen = known.filter(pl.col("decided_at") <= at - timedelta(days=3)) if rows else known
        k = fit_calibration(seen, CONFIG, before=at)[OpportunityType.FEE].factor
        rows.append(
            {
                "opportunity_type": "fee",
                "decided_at": at,
                "raw_estimate_msat": raw,
                "predicted_benefit_msat": round(k * raw),
                "actual_benefit_msat": actual,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"decided_at": pl.Datetime("us", "UTC")})


def test_learning_lowers_the_error_of_later_predictions_despite_outliers() -> None:
    """Fee moves earn a tenth of the scan's estimate, with noise and a few outcomes 30× the
    estimate either way (one or two forwards on a thin channel). The second half's predictions
    are closer than the first half's and than the prior's."""
    rng = random.Random(11)
    pairs = []
    for _ in range(60):
        raw = rng.randint(2_000, 20_000)
        noise = rng.gauss(0, 0.05 * raw)
        if rng.random() < 0.1:
            noise = rng.choice((-30, 30)) * raw
        pairs.append((raw, round(0.1 * raw + noise)))
    history = replay(pairs)
    (row,) = calibration_halves(history, START, START + timedelta(days=20))
    assert row.first.samples == row.second.samples == 30
    assert row.improved is True and row.beat_prior is True
    assert row.second.mean_abs_error_msat < row.first.mean_abs_error_msat


def test_one_outlier_does_not_swing_the_factor() -> None:
    pairs = [(10_000, 2_000)] * 19 + [(10_000, -300_000)]  # one −30× outcome
    fitted = fit_calibration(samples(pairs), CONFIG)[OpportunityType.FEE]
    assert fitted.factor == pytest.approx(0.2, abs=0.05)  # least squares through the origin: −1.0


def test_outcomes_measured_by_weaker_methods_count_less() -> None:
    strong = samples([(10_000, 1_000)] * 4).with_columns(method=pl.lit("did_unchanged"))
    weak = samples([(10_000, 8_000)] * 4).with_columns(method=pl.lit("before_after"))
    fitted = fit_calibration(pl.concat([strong, weak]), CONFIG)[OpportunityType.FEE]
    assert fitted.factor < 0.5  # the before/after ratios (0.8) are outweighed
    same = fit_calibration(
        pl.concat([strong, weak.with_columns(method=pl.lit("did_unchanged"))]), CONFIG
    )[OpportunityType.FEE]
    assert same.factor > fitted.factor


def test_weighted_median_splits_the_weight_and_refuses_bad_weights() -> None:
    assert weighted_median([1.0, 3.0], [1.0, 1.0]) == pytest.approx(2.0)
    assert weighted_median([-30.0, 0.2, 0.5], [1.0, 3.0, 1.0]) == 0.2  # not dragged to −30
    assert weighted_median([5.0], [2.0]) == 5.0
    with pytest.raises(ValueError, match="non-negative"):
        weighted_median([1.0], [-1.0])


def test_relative_error_compares_halves_of_different_scale() -> None:
    """The second half's outcomes are 10× bigger: its msat error is larger, yet predictions
    got closer relative to what happened, and that is what `improved` judges."""
    first = samples([(10_000, 1_000)] * 4).with_columns(
        predicted_benefit_msat=pl.lit(5_000, dtype=pl.Int64)
    )
    second = samples([(100_000, 10_000)] * 4, start=START + timedelta(days=10)).with_columns(
        predicted_benefit_msat=pl.lit(15_000, dtype=pl.Int64)
    )
    (row,) = calibration_halves(pl.concat([first, second]), START, START + timedelta(days=20))
    assert row.second.mean_abs_error_msat > row.first.mean_abs_error_msat
    assert row.first.relative_error == pytest.approx(4.0)
    assert row.second.relative_error == pytest.approx(0.5)
    assert row.improved is True
    assert row.second.prior_relative_error == pytest.approx(4.0) and row.beat_prior is True
    lines = format_calibration([row])
    assert "rel  4.00" in lines[0] and "improved, beat the prior" in lines[0]


def test_calibrated_fee_estimates_beat_predicting_zero_and_a_shuffled_estimate_does_not() -> None:
    """The scan's fee estimates on channels with known demand (test_advisor_scan), replayed
    through the advisor's online calibration: the second half's predictions are well inside
    predicting 0 (relative error 1.0). The same estimates shuffled against the outcomes (an
    estimate that carries no information) calibrate to no better than 0."""
    moves = synthetic_fee_moves(seed=5, trials=120)
    pairs = [(o.raw_estimate_msat, round(actual)) for o, actual in moves]
    end = START + timedelta(days=len(pairs) // 3)
    (row,) = calibration_halves(replay(pairs), START, end)
    assert row.second.relative_error is not None and row.second.relative_error < 0.85
    raws = [raw for raw, _ in pairs]
    random.Random(5).shuffle(raws)
    shuffled = list(zip(raws, [actual for _, actual in pairs], strict=True))
    (blind,) = calibration_halves(replay(shuffled), START, end)
    assert blind.second.relative_error is not None and blind.second.relative_error > 0.95
