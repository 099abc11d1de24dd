"""Predicted benefit: the scan's raw estimate scaled by what this type of action really earned.

Per type, actual ≈ k × raw. k has a normal prior centred on PRIOR_FACTOR worth `prior_strength`
outcomes of typical size, and is updated by least squares through the origin on measured
outcomes (the conjugate posterior mean):

    k = (n0 · m · k0 + Σ raw·actual) / (n0 · m + Σ raw²),     m = mean(raw²)

With no outcomes k = k0; with many, k follows the data. Confidence blends the prior confidence
with how well the fit explains the outcomes, weighted the same way.
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

SAMPLE_COLUMNS = ("opportunity_type", "decided_at", "raw_estimate_msat", "actual_benefit_msat")


def fit_calibration(
    samples: pl.DataFrame, config: AdvisorConfig, before: datetime | None = None
) -> dict[OpportunityType, TypeCalibration]:
    """One calibration per type from measured outcomes (`advisor_calibration` rows) decided
    before `before` (so a backtest never learns from its own future)."""
    frame = samples
    if before is not None and frame.height:
        frame = frame.filter(
            pl.col("decided_at").dt.convert_time_zone("UTC") < before.astimezone(UTC)
        )
    fitted = {}
    for kind in OpportunityType:
        rows = frame.filter(pl.col("opportunity_type") == str(kind)) if frame.height else frame
        x = [float(v) for v in rows["raw_estimate_msat"]] if rows.height else []
        y = [float(v) for v in rows["actual_benefit_msat"]] if rows.height else []
        fitted[kind] = _fit(kind, x, y, config)
    return fitted


def _fit(
    kind: OpportunityType, x: list[float], y: list[float], config: AdvisorConfig
) -> TypeCalibration:
    n = len(x)
    n0, c0 = config.prior_strength, config.prior_confidence
    sxx = sum(v * v for v in x)
    if n == 0 or sxx == 0:
        return TypeCalibration(opportunity_type=kind, samples=n, factor=PRIOR_FACTOR, confidence=c0)
    m = sxx / n
    sxy = sum(a * b for a, b in zip(x, y, strict=True))
    k = (n0 * m * PRIOR_FACTOR + sxy) / (n0 * m + sxx)
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


def calibration_halves(
    samples: pl.DataFrame, start: datetime, end: datetime
) -> list[CalibrationRow]:
    """Mean absolute prediction error per type in the first vs the second half of [start, end).

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
            errors = [
                abs(float(p) - float(a))
                for p, a in zip(
                    part["predicted_benefit_msat"], part["actual_benefit_msat"], strict=True
                )
            ]
            mae = sum(errors) / len(errors) if errors else None
            halves.append(CalibrationHalf(samples=len(errors), mean_abs_error_msat=mae))
        rows.append(CalibrationRow(opportunity_type=kind, first=halves[0], second=halves[1]))
    return rows


def format_calibration(rows: list[CalibrationRow]) -> list[str]:
    """Lines for the demo and `hiveops` reports."""

    def fmt(h: CalibrationHalf) -> str:
        err = "-" if h.mean_abs_error_msat is None else f"{h.mean_abs_error_msat / 1000:,.1f} sat"
        return f"{h.samples:>4} × MAE {err:>12}"

    if not rows:
        return ["  no advisor decision has a measured outcome yet"]
    out = []
    for r in rows:
        verdict = {True: "improved", False: "worse", None: "n/a"}[r.improved]
        out.append(
            f"  {r.opportunity_type:<16} first {fmt(r.first)}   second {fmt(r.second)}   {verdict}"
        )
    return out
