"""Detectors of the advisor's decisions: proposals rejected in a loop, and decisions that carry
no inputs or no prediction (audit findings 5 and 6)."""

from __future__ import annotations

import polars as pl

from engine.report.base import EMPTY_METRICS, counts, fired, fmt_counts, not_measurable, passed
from models.report import Finding, ReportConfig, Severity

ANSWERED = ("approved", "executed", "rejected", "expired")
REFUSED = ("rejected", "expired")


def detect_rejection_loop(decisions: pl.DataFrame, config: ReportConfig) -> Finding:
    """The newest answered approval decisions are an unbroken run of rejections/expiries."""
    name = "rejection_loop"
    answered = decisions.filter(
        (pl.col("mode") == "approval") & pl.col("state").is_in(ANSWERED)
    ).sort(pl.coalesce("answered_at", "decided_at"))
    if answered.is_empty():
        return not_measurable(name, "no approval decision was answered in the window")
    states = answered["state"].to_list()
    streak = 0
    for state in reversed(states):
        if state not in REFUSED:
            break
        streak += 1
    refused = answered.filter(pl.col("state").is_in(REFUSED))
    by_type = counts(refused["opportunity_type"].to_list())
    evidence = {
        "answered": answered.height,
        "refused": refused.height,
        "trailing_streak": streak,
        "by_type": by_type,
        "max_prior_rejections": int(answered["prior_rejections"].max() or 0),
    }
    if streak < config.rejection_streak:
        return passed(
            name,
            f"{refused.height} of {answered.height} answered proposals refused; latest "
            f"streak {streak} (bound {config.rejection_streak})",
            evidence,
        )
    return fired(
        name,
        Severity.WARNING,
        f"the last {streak} answered proposals were all rejected or expired ({refused.height} of "
        f"{answered.height} in the window; {fmt_counts(by_type)})",
        "Either lower the approval bar (advisor.min_benefit_msat) or answer the pending "
        "proposals; read the rejection reasons in advisor_decisions.answer_reason",
        evidence,
    )


def detect_decisions_without_prediction(decisions: pl.DataFrame) -> Finding:
    """Decisions with empty snapshot_metrics, or every prediction exactly 0."""
    name = "decisions_without_prediction"
    total = decisions.height
    if total == 0:
        return not_measurable(name, "no advisor decision in the window")
    no_metrics = decisions.filter(
        pl.col("snapshot_metrics").is_null()
        | pl.col("snapshot_metrics").str.strip_chars().is_in(list(EMPTY_METRICS))
    )
    zero = decisions.filter(pl.col("predicted_benefit_msat") == 0)
    zero_reasons = counts(zero["benefit_reason"].to_list())
    evidence = {
        "decisions": total,
        "without_metrics": no_metrics.height,
        "zero_prediction": zero.height,
        "zero_reasons": zero_reasons,
        "by_type": counts(decisions["opportunity_type"].to_list()),
    }
    all_zero = zero.height == total and total >= 3
    if no_metrics.is_empty() and not all_zero:
        return passed(
            name,
            f"all {total} decisions carry their inputs; {total - zero.height} with a non-zero "
            "prediction",
            evidence,
        )
    problems = []
    if not no_metrics.is_empty():
        problems.append(f"{no_metrics.height} of {total} decisions have no snapshot_metrics")
    if all_zero:
        problems.append(f"all {total} predictions are 0 ({fmt_counts(zero_reasons, 2)})")
    return fired(
        name,
        Severity.WARNING,
        "; ".join(problems),
        "Nothing can be learned from these decisions: check the advisor's inputs (fresh "
        "snapshots, forwards) and its benefit model",
        evidence,
    )
