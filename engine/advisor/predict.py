"""Predicted benefit: the scan's raw estimate scaled by what this type of action really earned.

Per type, actual ≈ k × raw. m is the weighted median of the measured ratios actual/raw, each
weighted by |raw| (so it minimises Σ|actual − m·raw|, the absolute error the calibration report
judges) and by how its outcome was measured (METHOD_WEIGHT); k shrinks m toward the prior
PRIOR_FACTOR, worth `prior_strength` outcomes, by how much trusted evidence there is:

    m = max(0, weighted median of {actual_i / raw_i : w_i = |raw_i| · method_i})
    n = Σ method_i                          (a before/after outcome counts a quarter)
    k = (n0 · k0 + n · m) / (n0 + n)

Why a median and not least squares: a fee outcome on a thin channel is one or two forwards
either side of the change, so a few outcomes are 10-100× the estimate in either direction
(engine/fees/outcomes.py). Replaying the audit demo, least squares let one of those swing k to
−13 and the next predictions were worse than the prior's; the median moves with the bulk.
A shrunk median and not a median with the prior as one more point: that held k exactly at the
prior until the outcomes outweighed it, then jumped to their median, so on the audit's thin
traffic (a dozen low-trust outcomes in three weeks) nothing was learned for two weeks
(bench/advisor.py); the blend moves k a little with every trusted outcome.
Outcomes whose raw estimate was 0 teach nothing about k (0 × k is 0) and are not fitted.
For fees, the prior's centre is itself fitted, the same way, on the estimate scored on the fees
loop's own measured changes (engine/advisor/backtest.py): several times the advisor's own
evidence on thin traffic, but a different population, so it moves the prior, not the median.
Confidence blends the prior confidence with how well the fit explains the outcomes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from models.advisor import (
    AdvisorConfig,
    CalibrationHalf,
    CalibrationRow,
    Opportunity,
    OpportunityType,
    Prediction,
    TypeCalibration,
)

# Raw estimates are the scans' own optimistic economics; operators' field records (rebalances
# costing 2-10× what they earn, fee moves that mostly change nothing) say halve them until the
# warehouse has measured better.
PRIOR_FACTOR = 0.5

# How much one measured outcome counts, by how it was measured: difference in differences
# against unchanged channels is the real thing; a node trend carries other channels' fee
# effects; before/after has no trend correction at all (engine/fees/outcomes.py).
METHOD_WEIGHT = {
    "did_unchanged": 1.0,
    "did_node_trend": 0.5,
    "before_after": 0.25,
    "measured": 1.0,  # rebalance outcomes: measured on the moved liquidity itself
}


def fit_calibration(
    samples: pl.DataFrame,
    config: AdvisorConfig,
    before: datetime | None = None,
    backtests: pl.DataFrame | None = None,
) -> dict[OpportunityType, TypeCalibration]:
    """One calibration per type from measured outcomes (`advisor_calibration` rows) decided
    before `before` (so a backtest never learns from its own future).

    `backtests` (advisor.backtest_samples: the fee estimate scored on the fees loop's measured
    changes) move where the fee factor's prior sits, fitted the same way; the advisor's own
    outcomes then shrink toward that. Not pooled: the loop's small exploratory steps and the
    advisor's moves on mispriced channels are different populations (pooled, the busy demo's
    own second-half error went from 0.68 to 0.88 while audit's fell), so the loop's evidence
    speaks where the advisor has little of its own and yields where it has more.
    """
    frame = _decided_before(samples, before)
    fee_prior = PRIOR_FACTOR
    if backtests is not None and backtests.height:
        changes = _decided_before(backtests, before)
        fee_prior = _fit(OpportunityType.FEE, *_points(changes, OpportunityType.FEE), config).factor
    return {
        kind: _fit(
            kind,
            *_points(frame, kind),
            config,
            fee_prior if kind is OpportunityType.FEE else PRIOR_FACTOR,
        )
        for kind in OpportunityType
    }


def _decided_before(frame: pl.DataFrame, before: datetime | None) -> pl.DataFrame:
    if before is None or not frame.height:
        return frame
    return frame.filter(pl.col("decided_at").dt.convert_time_zone("UTC") < before.astimezone(UTC))


def _points(
    frame: pl.DataFrame, kind: OpportunityType
) -> tuple[list[float], list[float], list[float]]:
    """(raw, actual, method weight) of the type's outcomes with a non-zero raw estimate."""
    if not frame.height:
        return [], [], []
    rows = frame.filter(
        (pl.col("opportunity_type") == str(kind)) & (pl.col("raw_estimate_msat") != 0)
    )
    methods = (
        [METHOD_WEIGHT.get(str(m), 1.0) for m in rows["method"]]
        if "method" in rows.columns
        else [1.0] * rows.height
    )
    return (
        [float(v) for v in rows["raw_estimate_msat"]],
        [float(v) for v in rows["actual_benefit_msat"]],
        methods,
    )


def _fit(
    kind: OpportunityType,
    x: list[float],
    y: list[float],
    method_weights: list[float],
    config: AdvisorConfig,
    prior_factor: float = PRIOR_FACTOR,
) -> TypeCalibration:
    n = len(x)
    n0, c0 = config.prior_strength, config.prior_confidence
    if n == 0:
        return TypeCalibration(opportunity_type=kind, samples=0, factor=prior_factor, confidence=c0)
    weights = [abs(a) * m for a, m in zip(x, method_weights, strict=True)]
    ratios = [b / a for a, b in zip(x, y, strict=True)]
    trusted = sum(method_weights)
    # A negative median would turn every estimate's sign around: on a weak but directional
    # estimate that is noise, never knowledge (busy, learning from the fees loop's changes, went
    # to −1.3 for a day on its first dozen outcomes). 0 — "the estimate tells nothing" — is as
    # far as the evidence may take it.
    median = max(weighted_median(ratios, weights), 0.0)
    k = (n0 * prior_factor + trusted * median) / (n0 + trusted)
    mae = sum(abs(b - k * a) for a, b in zip(x, y, strict=True)) / n
    scale = max(sum(abs(b) for b in y) / n, sum(abs(k * a) for a in x) / n, 1.0)
    fit = 1 / (1 + mae / scale)
    confidence = (n0 * c0 + n * fit) / (n0 + n)
    return TypeCalibration(
        opportunity_type=kind,
        samples=n,
        factor=k,
        confidence=min(max(confidence, 0.0), 1.0),
        mean_abs_error_msat=mae,
    )


def weighted_median(values: list[float], weights: list[float]) -> float:
    """The value at which half the weight lies on either side (the midpoint of the two values
    when the split falls exactly between them). Not interpolated: one far-out ratio must not
    drag k toward it in proportion to how far out it is."""
    if not values or len(values) != len(weights) or any(w < 0 for w in weights):
        raise ValueError("weighted_median needs as many non-negative weights as values")
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        raise ValueError("weighted_median needs at least one positive weight")
    half = sum(w for _, w in pairs) / 2
    running = 0.0
    for i, (value, weight) in enumerate(pairs):
        running += weight
        if abs(running - half) <= 1e-9 * half and i + 1 < len(pairs):
            return (value + pairs[i + 1][0]) / 2
        if running > half:
            return value
    return pairs[-1][0]


def predict(
    opportunity: Opportunity, calibration: TypeCalibration, rejection_rate: float = 0.0
) -> Prediction:
    """Benefit and confidence; the reason says where the number came from, and why 0 if 0.

    A type operators mostly reject gets less confidence: they know something the model does not.
    """
    k = calibration.factor
    kind = opportunity.opportunity_type
    source = (
        f"× {k:.3f} fitted on {calibration.samples} measured {kind} outcomes"
        if calibration.samples
        else f"× prior {k:.2f} (no measured {kind} outcome yet)"
    )
    raw = opportunity.raw_estimate_msat
    predicted = round(k * raw)
    if raw == 0:
        reason = f"0: {opportunity.estimate_reason}"
    elif predicted == 0:
        reason = f"0: the calibration shrinks {raw} msat to nothing ({source})"
    else:
        reason = f"{opportunity.estimate_reason}; raw {raw} msat {source}"
    confidence = calibration.confidence * (1 - min(max(rejection_rate, 0.0), 1.0))
    return Prediction(
        predicted_benefit_msat=predicted,
        confidence=confidence,
        calibration_factor=k,
        benefit_reason=reason,
    )


def walk_forward(backtested: pl.DataFrame, config: AdvisorConfig) -> pl.DataFrame:
    """The backtested fee changes (with `measured_at`), each with the benefit the fee prior in
    force at its instant would have predicted: the factor fitted, as `fit_calibration` centres
    the fee prior, only on changes measured before it. Several times as many samples as the
    advisor's own decisions on thin traffic, so its halves say more about learning."""
    if not backtested.height:
        return backtested.with_columns(pl.lit(None, pl.Int64).alias("predicted_benefit_msat"))
    evidence = backtested.with_columns(pl.col("measured_at").dt.convert_time_zone("UTC"))
    predicted = []
    for row in backtested.iter_rows(named=True):
        known = evidence.filter(pl.col("measured_at") < row["decided_at"].astimezone(UTC))
        factor = _fit(OpportunityType.FEE, *_points(known, OpportunityType.FEE), config).factor
        predicted.append(round(factor * row["raw_estimate_msat"]))
    return backtested.with_columns(pl.Series("predicted_benefit_msat", predicted, pl.Int64))


def calibration_halves(
    samples: pl.DataFrame, start: datetime, end: datetime, evidence: str = "decisions"
) -> list[CalibrationRow]:
    """Prediction error per type in the first vs the second half of [start, end).

    Uses the predictions as they were made (predicted_benefit_msat at decision time), so a lower
    second-half error means the advisor learned, not that it was refitted after the fact.
    """
    if end <= start:
        raise ValueError(f"calibration period is empty: start {start} is not before end {end}")
    middle = start + (end - start) / 2
    frame = (
        samples.with_columns(pl.col("decided_at").dt.convert_time_zone("UTC"))
        if samples.height
        else samples
    )
    rows = []
    for kind in OpportunityType:
        if not frame.height:
            continue
        typed = frame.filter(pl.col("opportunity_type") == str(kind))
        if not typed.height:
            continue
        halves = []
        for lo, hi in ((start, middle), (middle, end)):
            part = typed.filter(
                (pl.col("decided_at") >= lo.astimezone(UTC))
                & (pl.col("decided_at") < hi.astimezone(UTC))
            )
            actual = [float(a) for a in part["actual_benefit_msat"]]
            errors = [
                abs(float(p) - a)
                for p, a in zip(part["predicted_benefit_msat"], actual, strict=True)
            ]
            prior_errors = [
                abs(round(PRIOR_FACTOR * float(r)) - a)
                for r, a in zip(part["raw_estimate_msat"], actual, strict=True)
            ]
            halves.append(
                CalibrationHalf(
                    samples=len(errors),
                    mean_abs_error_msat=_mean(errors),
                    prior_mean_abs_error_msat=_mean(prior_errors),
                    mean_abs_actual_msat=_mean([abs(a) for a in actual]),
                )
            )
        rows.append(
            CalibrationRow(
                opportunity_type=kind, first=halves[0], second=halves[1], evidence=evidence
            )
        )
    return rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def format_calibration(rows: list[CalibrationRow]) -> list[str]:
    """Lines for the demo and `hiveops` reports, per type and half: samples, mean absolute error,
    relative error (error per msat of outcome; 1.00 = predicting 0) and, in brackets, the
    relative error the uncalibrated prior would have had on the same outcomes."""

    def rel(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def fmt(h: CalibrationHalf) -> str:
        mae = "-" if h.mean_abs_error_msat is None else f"{h.mean_abs_error_msat / 1000:,.1f}"
        return (
            f"{h.samples:>3} × MAE {mae:>8} sat, rel {rel(h.relative_error):>5} "
            f"(prior {rel(h.prior_relative_error):>5})"
        )

    if not rows:
        return ["  no advisor decision has a measured outcome yet"]
    out = []
    for r in rows:
        verdict = {True: "improved", False: "not improved", None: "n/a"}[r.improved]
        learned = {True: ", beat the prior", False: ", no better than the prior", None: ""}
        label = str(r.opportunity_type)
        if r.evidence != "decisions":
            label = f"{label} ({r.evidence})"
        out.append(
            f"  {label:<16} first {fmt(r.first)}  second {fmt(r.second)}  "
            f"{verdict}{learned[r.beat_prior]}"
        )
    return out
