"""Predicted benefit: a per-type shrinkage estimate that learns from measured outcomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.advisor.predict import PRIOR_FACTOR, calibration_halves, fit_calibration, predict
from models.advisor import AdvisorConfig, Opportunity, OpportunityType, OwnerLoop

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


def test_few_outcomes_move_the_factor_only_part_way() -> None:
    few = fit_calibration(samples([(10_000, 0)]), CONFIG)[OpportunityType.FEE].factor
    assert 0 < few < PRIOR_FACTOR


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
