"""The self-audit's detectors in the audit's order, and the runner that never lets one missing
table or one broken detector take the whole report down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.report.advisor import detect_decisions_without_prediction, detect_rejection_loop
from engine.report.base import FRAME_TABLES, AuditInputs, not_measurable
from engine.report.books import (
    detect_books_mismatch,
    detect_external_changes,
    detect_losing_channels,
)
from engine.report.channels import (
    detect_cold_start_stuck,
    detect_fleet_fee_nonzero,
    detect_one_sided_channels,
)
from engine.report.fleet import detect_critical_member_unassisted, detect_zero_contribution
from engine.report.loops import (
    detect_loop_stale,
    detect_retries_exhausted,
    detect_risky_config,
    detect_zero_snapshot,
)
from engine.report.money import (
    detect_rebalances_failing,
    detect_zero_budget_rows,
    detect_zero_fee_outcomes,
)
from models.report import Finding, ReportConfig, Severity

Run = Callable[[AuditInputs, ReportConfig], Finding]


@dataclass(frozen=True)
class Detector:
    name: str
    title: str  # the heading the report gives a fired detector
    frames: tuple[str, ...]  # the frames (and through them the tables) it needs
    run: Run


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "loop_stale",
        "Loops not running (advisor or any loop stale)",
        ("heartbeats",),
        lambda i, c: detect_loop_stale(
            i.freshness,
            i.orchestration,
            i.now,
            first_heartbeat_at=i.first_heartbeat_at,
            nodes=i.node_names,
        ),
    ),
    Detector(
        "zero_snapshot",
        "Zero-balance financial snapshots",
        ("node_snapshots", "alerts"),
        lambda i, c: detect_zero_snapshot(i.frame("node_snapshots"), i.frame("alerts"), c, i.now),
    ),
    Detector(
        "rebalances_failing",
        "All recent rebalances failing",
        ("rebalance_attempts",),
        lambda i, c: detect_rebalances_failing(i.frame("rebalance_attempts"), c),
    ),
    Detector(
        "fleet_fee_nonzero",
        "Fleet channels charging fees",
        ("channels",),
        lambda i, c: detect_fleet_fee_nonzero(i.frame("channels"), i.member_ids(), c),
    ),
    Detector(
        "rejection_loop",
        "Proposals stuck in a rejection loop",
        ("advisor_decisions",),
        lambda i, c: detect_rejection_loop(i.frame("advisor_decisions"), c),
    ),
    Detector(
        "decisions_without_prediction",
        "Decisions without inputs or prediction",
        ("advisor_decisions",),
        lambda i, c: detect_decisions_without_prediction(i.frame("advisor_decisions")),
    ),
    Detector(
        "zero_budget_rows",
        "Daily budget tracking all zeros",
        ("budget_rows",),
        lambda i, c: detect_zero_budget_rows(i.frame("budget_rows"), c),
    ),
    Detector(
        "zero_fee_outcomes",
        "Fee-change outcomes not measured",
        ("fee_outcomes",),
        lambda i, c: detect_zero_fee_outcomes(i.frame("fee_outcomes"), c),
    ),
    Detector(
        "one_sided_channels",
        "Severely one-sided channels",
        ("channels",),
        lambda i, c: detect_one_sided_channels(i.frame("channels"), i.member_ids(), c),
    ),
    Detector(
        "critical_member_unassisted",
        "Critical fleet member without assistance",
        ("member_health", "assistance"),
        lambda i, c: detect_critical_member_unassisted(
            i.frame("member_health"), i.frame("assistance"), c, i.now
        ),
    ),
    Detector(
        "cold_start_stuck",
        "Channels stuck in cold start",
        ("channels",),
        lambda i, c: detect_cold_start_stuck(i.frame("channels"), i.member_ids(), c, i.now),
    ),
    Detector(
        "zero_contribution",
        "Fleet contribution tracking empty",
        ("contribution",),
        lambda i, c: detect_zero_contribution(i.frame("contribution")),
    ),
    Detector(
        "risky_config",
        "Risky configuration values",
        (),
        lambda i, c: detect_risky_config(i.config_warnings),
    ),
    Detector(
        "retries_exhausted",
        "Runs failing after their retries",
        ("heartbeats", "alerts"),
        lambda i, c: detect_retries_exhausted(i.frame("heartbeats"), i.frame("alerts"), c, i.now),
    ),
    Detector(
        "books_mismatch",
        "Forwards or sling disagree with bookkeeper",
        ("reconciliation",),
        lambda i, c: detect_books_mismatch(i.frame("reconciliation")),
    ),
    Detector(
        "external_changes",
        "Channel settings changed outside hiveops",
        ("external_changes",),
        lambda i, c: detect_external_changes(i.frame("external_changes"), i.now),
    ),
    Detector(
        "losing_channels",
        "Channels losing money (return on capacity)",
        ("channel_returns",),
        lambda i, c: detect_losing_channels(i.frame("channel_returns")),
    ),
)
TITLES: dict[str, str] = {d.name: d.title for d in DETECTORS}


def run_detector(detector: Detector, inputs: AuditInputs, config: ReportConfig) -> Finding:
    """One detector's finding; a missing table or a detector error becomes its own finding."""
    needed = [t for f in detector.frames for t in FRAME_TABLES.get(f, ())]
    missing = sorted(set(inputs.missing(needed)))
    if missing:
        return not_measurable(
            detector.name,
            f"table {', '.join(missing)} missing (migration not applied yet?)",
            {"missing_tables": missing},
        )
    try:
        return detector.run(inputs, config)
    except Exception as exc:  # a broken detector must not hide the others
        return Finding(
            detector=detector.name,
            ok=False,
            measurable=False,
            severity=Severity.WARNING,
            summary=f"not measurable: detector error {type(exc).__name__}: {exc}",
            evidence={"error": repr(exc)},
        )


def run_detectors(inputs: AuditInputs, config: ReportConfig) -> list[Finding]:
    """Every detector's finding, in the audit's order."""
    return [run_detector(d, inputs, config) for d in DETECTORS]
