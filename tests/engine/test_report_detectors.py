"""Each failure class of the 2026-02 audit, injected as warehouse frames, fires its detector;
the healthy version of the same facts does not."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from engine.config_risks import config_warnings
from engine.report import AuditInputs, render_report, run_detectors
from engine.report.advisor import detect_decisions_without_prediction, detect_rejection_loop
from engine.report.base import FRAMES
from engine.report.channels import (
    detect_cold_start_stuck,
    detect_fleet_fee_nonzero,
    detect_one_sided_channels,
)
from engine.report.compose import compose_report
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
from engine.report.png import bar_chart, line_chart
from models.orchestration import LoopFreshness, OrchestrationConfig
from models.report import Finding, ReportConfig, Severity
from models.settings import Settings

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)
CONFIG = ReportConfig()
MEMBER = "03" + "3" * 64
TS = pl.Datetime("us", "UTC")


def frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema)


def assert_fired(finding: Finding, severity: Severity | None = None) -> None:
    assert finding.fired, finding
    assert finding.action
    if severity is not None:
        assert finding.severity == severity


def assert_ok(finding: Finding) -> None:
    assert finding.ok and finding.measurable, finding


# --- loops -------------------------------------------------------------------------------


def fresh(loop: str, node: str, ago: timedelta) -> LoopFreshness:
    return LoopFreshness(loop=loop, node=node, last_ok_at=NOW - ago, runs=10)


def test_advisor_silent_for_five_days_fires_loop_stale_critical() -> None:
    rows = [fresh("collect", "nexus-02", timedelta(minutes=5)), fresh("advisor", "*", 5 * DAY)]
    finding = detect_loop_stale(
        rows,
        OrchestrationConfig(loops=("collect", "advisor")),
        NOW,
        first_heartbeat_at=NOW - 20 * DAY,
    )
    assert_fired(finding, Severity.CRITICAL)
    assert finding.summary.startswith("the advisor is stale")
    assert "5.0 d" in finding.summary
    assert [s["loop"] for s in finding.evidence["stale"]] == ["advisor"]


def test_loops_within_their_window_are_not_stale() -> None:
    rows = [
        fresh("collect", "nexus-02", timedelta(minutes=5)),
        fresh("advisor", "*", 30 * 60 * timedelta(seconds=1)),
    ]
    finding = detect_loop_stale(
        rows, OrchestrationConfig(loops=("collect", "advisor")), NOW, first_heartbeat_at=NOW - DAY
    )
    assert_ok(finding)


HEARTBEATS = {"loop": pl.String, "node": pl.String, "started_at": TS, "status": pl.String}
ALERTS = {
    "raised_at": TS,
    "loop": pl.String,
    "node": pl.String,
    "kind": pl.String,
    "resolved_at": TS,
}


def test_runs_failing_after_retries_fire_retries_exhausted() -> None:
    beats = frame(
        [
            {
                "loop": "collect",
                "node": "nexus-03",
                "started_at": NOW - h * timedelta(hours=1),
                "status": "failed",
            }
            for h in (1, 2, 3)
        ]
        + [
            {
                "loop": "collect",
                "node": "nexus-01",
                "started_at": NOW - timedelta(hours=1),
                "status": "ok",
            }
        ],
        HEARTBEATS,
    )
    alerts = frame(
        [
            {
                "raised_at": NOW - timedelta(hours=1),
                "loop": "collect",
                "node": "nexus-03",
                "kind": "node_unreachable",
                "resolved_at": None,
            }
        ],
        ALERTS,
    )
    finding = detect_retries_exhausted(beats, alerts, CONFIG, NOW)
    assert_fired(finding, Severity.CRITICAL)  # every run of collect on nexus-03 failed
    assert "collect on nexus-03: 3 of 3" in finding.summary
    assert finding.evidence["open_alerts_by_kind"] == {"node_unreachable": 1}


def test_successful_runs_and_old_failures_are_not_retries_exhausted() -> None:
    beats = frame(
        [
            {
                "loop": "collect",
                "node": "nexus-01",
                "started_at": NOW - timedelta(hours=1),
                "status": "ok",
            },
            {
                "loop": "collect",
                "node": "nexus-01",
                "started_at": NOW - 3 * DAY,
                "status": "failed",
            },
        ],
        HEARTBEATS,
    )
    assert_ok(detect_retries_exhausted(beats, frame([], ALERTS), CONFIG, NOW))


SNAPSHOTS = {
    "node_name": pl.String,
    "taken_at": TS,
    "num_channels": pl.Int32,
    "capacity_msat": pl.Int64,
    "local_msat": pl.Int64,
    "remote_msat": pl.Int64,
}


def snapshot(capacity_msat: int, local_msat: int, ago_h: int = 1) -> dict[str, Any]:
    return {
        "node_name": "nexus-02",
        "taken_at": NOW - timedelta(hours=ago_h),
        "num_channels": 16,
        "capacity_msat": capacity_msat,
        "local_msat": local_msat,
        "remote_msat": capacity_msat - local_msat,
    }


def test_zero_balance_snapshot_stored_or_refused_fires_zero_snapshot() -> None:
    stored = frame([snapshot(55_000_000_000, 41_500_000_000), snapshot(0, 0, 2)], SNAPSHOTS)
    finding = detect_zero_snapshot(stored, frame([], ALERTS), CONFIG, NOW)
    assert_fired(finding, Severity.CRITICAL)
    assert finding.evidence["zero_rows_stored"] == 1
    refused = frame(
        [
            {
                "raised_at": NOW - timedelta(hours=3),
                "loop": "collect",
                "node": "nexus-02",
                "kind": "zero_snapshot",
                "resolved_at": None,
            }
        ],
        ALERTS,
    )
    finding = detect_zero_snapshot(frame([snapshot(5, 3)], SNAPSHOTS), refused, CONFIG, NOW)
    assert_fired(finding)
    assert "1 snapshot(s) refused" in finding.summary


def test_funded_snapshots_are_not_zero() -> None:
    snaps = frame([snapshot(55_000_000_000, 41_500_000_000)], SNAPSHOTS)
    assert_ok(detect_zero_snapshot(snaps, frame([], ALERTS), CONFIG, NOW))


def test_audit_chunk_size_fires_risky_config() -> None:
    settings = Settings(rebalance={"chunk_sat": 200_000})
    finding = detect_risky_config(config_warnings(settings, [300_000] * 5))
    assert_fired(finding, Severity.WARNING)
    assert any("chunk_sat=200000" in w for w in finding.evidence["warnings"])
    assert_ok(detect_risky_config([]))


# --- money -------------------------------------------------------------------------------

ATTEMPTS = {
    "node_name": pl.String,
    "amount_msat": pl.Int64,
    "state": pl.String,
    "proposed_at": TS,
    "failure_reason": pl.String,
    "dry_run": pl.Boolean,
}


def attempt(state: str, hours_ago: int, dry_run: bool = False) -> dict[str, Any]:
    return {
        "node_name": "nexus-02",
        "amount_msat": 200_000_000,
        "state": state,
        "proposed_at": NOW - timedelta(hours=hours_ago),
        "failure_reason": "NoRoutes" if state == "failed" else None,
        "dry_run": dry_run,
    }


def test_five_failed_rebalances_fire_rebalances_failing() -> None:
    rows = [attempt("succeeded", 50)] + [attempt("failed", h) for h in range(5, 0, -1)]
    finding = detect_rebalances_failing(frame(rows, ATTEMPTS), CONFIG)
    assert_fired(finding, Severity.CRITICAL)
    assert "last 5 attempts all failed" in finding.summary
    assert "200,000 sat" in finding.summary and "NoRoutes ×5" in finding.summary


def test_a_recent_success_or_dry_runs_do_not_fire_rebalances_failing() -> None:
    rows = [attempt("failed", h) for h in (6, 5, 4, 3)] + [attempt("succeeded", 2)]
    rows += [attempt("failed", 1, dry_run=True) for _ in range(5)]
    assert_ok(detect_rebalances_failing(frame(rows, ATTEMPTS), CONFIG))


BUDGET = {
    "node_name": pl.String,
    "day": pl.Date,
    "budget_msat": pl.Int64,
    "earned_msat": pl.Int64,
    "rebalance_spent_msat": pl.Int64,
    "onchain_spent_msat": pl.Int64,
    "reserved_msat": pl.Int64,
    "forwards_earned_msat": pl.Int64,
}


def budget_row(day: int, earned: int, forwards_earned: int, budget: int = 0) -> dict[str, Any]:
    return {
        "node_name": "nexus-02",
        "day": date(2026, 2, day),
        "budget_msat": budget,
        "earned_msat": earned,
        "rebalance_spent_msat": 0,
        "onchain_spent_msat": 0,
        "reserved_msat": 0,
        "forwards_earned_msat": forwards_earned,
    }


def test_all_zero_budget_rows_fire_zero_budget_rows() -> None:
    rows = [budget_row(5, 0, 0), budget_row(6, 0, 0)]
    finding = detect_zero_budget_rows(frame(rows, BUDGET), CONFIG)
    assert_fired(finding, Severity.WARNING)
    assert "all 2 budget rows are zero" in finding.summary


def test_budget_row_missing_forward_earnings_fires_zero_budget_rows() -> None:
    rows = [budget_row(5, 0, 40_000, budget=2_000_000), budget_row(6, 30_000, 30_000, 2_000_000)]
    finding = detect_zero_budget_rows(frame(rows, BUDGET), CONFIG)
    assert_fired(finding)
    assert "1 day(s) show 0 earned" in finding.summary


def test_budget_rows_from_facts_pass() -> None:
    rows = [budget_row(5, 40_000, 40_000, 2_000_000), budget_row(6, 0, 0, 2_000_000)]
    assert_ok(detect_zero_budget_rows(frame(rows, BUDGET), CONFIG))


OUTCOMES = {"status": pl.String, "actual_benefit_msat": pl.Int64, "detail": pl.String}


def test_unmeasurable_or_zero_fee_outcomes_fire_zero_fee_outcomes() -> None:
    insufficient = [
        {
            "status": "insufficient_data",
            "actual_benefit_msat": None,
            "detail": f"no settled forward out of {i}x1x0 in 24.0 h before or 24.0 h after",
        }
        for i in range(4)
    ]
    finding = detect_zero_fee_outcomes(frame(insufficient, OUTCOMES), CONFIG)
    assert_fired(finding, Severity.WARNING)
    assert "none of 4" in finding.summary
    assert finding.evidence["insufficient_reasons"] == {
        "no settled forward out of <scid> in N h before or N h after": 4
    }
    zeros = [{"status": "measured", "actual_benefit_msat": 0, "detail": "ok"}] * 557
    finding = detect_zero_fee_outcomes(frame(zeros, OUTCOMES), CONFIG)
    assert_fired(finding)
    assert "all 557 measured" in finding.summary


def test_measured_fee_outcomes_pass_and_too_few_are_not_measurable() -> None:
    rows = [
        {"status": "measured", "actual_benefit_msat": v, "detail": "ok"} for v in (500, -200, 0)
    ]
    assert_ok(detect_zero_fee_outcomes(frame(rows, OUTCOMES), CONFIG))
    few = detect_zero_fee_outcomes(frame(rows[:2], OUTCOMES), CONFIG)
    assert not few.measurable and not few.ok and few.severity == Severity.INFO


# --- channels ----------------------------------------------------------------------------

CHANNELS = {
    "node_name": pl.String,
    "scid": pl.String,
    "peer_id": pl.String,
    "state": pl.String,
    "is_fleet": pl.Boolean,
    "capacity_msat": pl.Int64,
    "local_share": pl.Float64,
    "fee_base_msat": pl.Int64,
    "fee_ppm": pl.Int32,
    "first_seen_at": TS,
    "last_forward_at": TS,
    "last_fee_change_at": TS,
}


def channel(
    scid: str,
    share: float = 0.5,
    *,
    fleet: bool = False,
    peer: str = "02" + "a" * 64,
    fee_ppm: int = 100,
    fee_base_msat: int = 0,
    age_days: int = 30,
    forward_days: int | None = 1,
    change_days: int | None = None,
) -> dict[str, Any]:
    return {
        "node_name": "nexus-02",
        "scid": scid,
        "peer_id": peer,
        "state": "CHANNELD_NORMAL",
        "is_fleet": fleet,
        "capacity_msat": 3_000_000_000,
        "local_share": share,
        "fee_base_msat": fee_base_msat,
        "fee_ppm": fee_ppm,
        "first_seen_at": NOW - age_days * DAY,
        "last_forward_at": None if forward_days is None else NOW - forward_days * DAY,
        "last_fee_change_at": None if change_days is None else NOW - change_days * DAY,
    }


def test_fleet_channel_with_a_fee_fires_fleet_fee_nonzero() -> None:
    rows = [
        channel("933128x1345x0", fleet=True, fee_ppm=0),
        channel("933882x99x0", peer=MEMBER, fee_ppm=25, fee_base_msat=1000),  # via fleet_members
        channel("1x1x1", fee_ppm=500),
    ]
    finding = detect_fleet_fee_nonzero(frame(rows, CHANNELS), {MEMBER}, CONFIG)
    assert_fired(finding, Severity.CRITICAL)
    assert "1 of 2 fleet channels" in finding.summary and "933882x99x0" in finding.summary


def test_zero_fee_fleet_channels_pass() -> None:
    rows = [channel("933128x1345x0", fleet=True, fee_ppm=0), channel("1x1x1", fee_ppm=500)]
    assert_ok(detect_fleet_fee_nonzero(frame(rows, CHANNELS), set(), CONFIG))


def test_thirteen_of_fifteen_full_channels_fire_one_sided() -> None:
    rows = [channel(f"{i}x1x0", 0.98) for i in range(11)]
    rows += [channel(f"{i}x2x0", 0.01) for i in range(2)] + [channel("8x8x0"), channel("9x9x0")]
    rows += [channel("7x7x7", 1.0, fleet=True, fee_ppm=0)]  # fleet channels are not counted
    finding = detect_one_sided_channels(frame(rows, CHANNELS), set(), CONFIG)
    assert_fired(finding, Severity.WARNING)
    assert finding.summary.startswith("13 of 15 external channels one-sided")
    assert len(finding.evidence["depleted"]) == 2


def test_balanced_channels_pass_one_sided() -> None:
    rows = [channel(f"{i}x1x0", 0.3 + i / 20) for i in range(8)] + [channel("9x9x9", 0.99)]
    assert_ok(detect_one_sided_channels(frame(rows, CHANNELS), set(), CONFIG))


def test_channel_without_forwards_or_fee_change_fires_cold_start_stuck() -> None:
    rows = [
        channel("1x1x1", forward_days=None, change_days=None, age_days=20),  # stuck
        channel("2x2x2", forward_days=12, change_days=9, age_days=20),  # stuck
        channel("3x3x3", forward_days=None, change_days=2, age_days=20),  # explored
        channel("4x4x4", forward_days=None, age_days=3),  # too young to judge
    ]
    finding = detect_cold_start_stuck(frame(rows, CHANNELS), set(), CONFIG, NOW)
    assert_fired(finding, Severity.WARNING)
    assert finding.summary.startswith("2 of 3 channels older than 7 d")
    assert "1 never forwarded" in finding.summary


def test_channels_that_forward_or_get_new_fees_pass_cold_start() -> None:
    rows = [channel("1x1x1", forward_days=1), channel("3x3x3", forward_days=None, change_days=2)]
    assert_ok(detect_cold_start_stuck(frame(rows, CHANNELS), set(), CONFIG, NOW))


# --- advisor -----------------------------------------------------------------------------

DECISIONS = {
    "decided_at": TS,
    "opportunity_type": pl.String,
    "mode": pl.String,
    "state": pl.String,
    "answered_at": TS,
    "snapshot_metrics": pl.String,
    "predicted_benefit_msat": pl.Int64,
    "benefit_reason": pl.String,
    "prior_rejections": pl.Int32,
}


def decision(
    i: int, state: str = "rejected", metrics: str = '{"local_share": 0.4}', predicted: int = 5000
) -> dict[str, Any]:
    at = NOW - timedelta(hours=100 - i)
    return {
        "decided_at": at,
        "opportunity_type": "channel_open",
        "mode": "approval",
        "state": state,
        "answered_at": at + timedelta(minutes=5),
        "snapshot_metrics": metrics,
        "predicted_benefit_msat": predicted,
        "benefit_reason": "revenue above cost" if predicted else "below the bar",
        "prior_rejections": i,
    }


def test_twenty_five_consecutive_rejections_fire_rejection_loop() -> None:
    rows = [decision(0, "approved")] + [decision(i, "rejected") for i in range(1, 24)]
    rows += [decision(24, "expired"), decision(25, "expired")]
    finding = detect_rejection_loop(frame(rows, DECISIONS), CONFIG)
    assert_fired(finding, Severity.WARNING)
    assert finding.evidence["trailing_streak"] == 25


def test_an_approval_breaks_the_rejection_loop() -> None:
    rows = [decision(i, "rejected") for i in range(10)] + [decision(10, "executed")]
    rows += [decision(11, "rejected")]
    finding = detect_rejection_loop(frame(rows, DECISIONS), CONFIG)
    assert_ok(finding)
    assert finding.evidence["trailing_streak"] == 1


def test_decisions_without_metrics_or_with_zero_predictions_fire() -> None:
    rows = [decision(i, "proposed", metrics="{}") for i in range(3)] + [decision(3, "proposed")]
    finding = detect_decisions_without_prediction(frame(rows, DECISIONS))
    assert_fired(finding, Severity.WARNING)
    assert "3 of 4 decisions have no snapshot_metrics" in finding.summary
    zeros = [decision(i, "proposed", predicted=0) for i in range(5)]
    finding = detect_decisions_without_prediction(frame(zeros, DECISIONS))
    assert_fired(finding)
    assert "all 5 predictions are 0" in finding.summary


def test_decisions_with_inputs_and_predictions_pass() -> None:
    rows = [decision(0, "proposed", predicted=0), decision(1, "proposed"), decision(2, "proposed")]
    assert_ok(detect_decisions_without_prediction(frame(rows, DECISIONS)))


# --- fleet -------------------------------------------------------------------------------

HEALTH = {
    "node_id": pl.String,
    "name": pl.String,
    "tier": pl.String,
    "health_score": pl.Float64,
    "measured_at": TS,
    "tier_since": TS,
}
ASSIST = {
    "node_id": pl.String,
    "kind": pl.String,
    "state": pl.String,
    "result": pl.String,
    "requested_at": TS,
    "decision_note": pl.String,
}


def member_health(tier: str = "critical", since_days: float = 2) -> pl.DataFrame:
    return frame(
        [
            {
                "node_id": "02" + "1" * 64,
                "name": "nexus-01",
                "tier": "healthy",
                "health_score": 71.0,
                "measured_at": NOW,
                "tier_since": NOW - 9 * DAY,
            },
            {
                "node_id": MEMBER,
                "name": "nexus-03",
                "tier": tier,
                "health_score": 8.0,
                "measured_at": NOW,
                "tier_since": NOW - since_days * DAY,
            },
        ],
        HEALTH,
    )


def assist(state: str, result: str | None = None, note: str | None = None) -> dict[str, Any]:
    return {
        "node_id": MEMBER,
        "kind": "liquidity_pull",
        "state": state,
        "result": result,
        "requested_at": NOW - DAY,
        "decision_note": note,
    }


def test_critical_member_with_no_assistance_fires() -> None:
    finding = detect_critical_member_unassisted(member_health(), frame([], ASSIST), CONFIG, NOW)
    assert_fired(finding, Severity.WARNING)
    assert (
        "nexus-03 critical (health 8.0) for 2.0 d: no assistance action at all" in finding.summary
    )


def test_critical_member_whose_assistance_could_not_help_fires() -> None:
    rows = [assist("not_possible", "could_not_help", "no source channel with spare liquidity")]
    finding = detect_critical_member_unassisted(member_health(), frame(rows, ASSIST), CONFIG, NOW)
    assert_fired(finding)
    assert "1 action(s), none helped (could_not_help ×1)" in finding.summary


def test_critical_member_being_helped_or_newly_critical_passes() -> None:
    helping = frame([assist("open")], ASSIST)
    assert_ok(detect_critical_member_unassisted(member_health(), helping, CONFIG, NOW))
    fresh = member_health(since_days=0.25)
    assert_ok(detect_critical_member_unassisted(fresh, frame([], ASSIST), CONFIG, NOW))


CONTRIB = {
    "name": pl.String,
    "cycles_expected": pl.Int32,
    "cycles_up": pl.Int32,
    "uptime_pct": pl.Float64,
    "contribution_ratio": pl.Float64,
    "forwarded_for_members_msat": pl.Int64,
    "forwarded_by_members_msat": pl.Int64,
    "assist_given_msat": pl.Int64,
    "assist_received_msat": pl.Int64,
}


def contribution(name: str, uptime: float, ratio: float, forwarded: int) -> dict[str, Any]:
    return {
        "name": name,
        "cycles_expected": 21,
        "cycles_up": round(21 * uptime / 100),
        "uptime_pct": uptime,
        "contribution_ratio": ratio,
        "forwarded_for_members_msat": forwarded,
        "forwarded_by_members_msat": forwarded,
        "assist_given_msat": 0,
        "assist_received_msat": 0,
    }


def test_all_zero_contribution_fires_zero_contribution() -> None:
    rows = [contribution(n, 0.0, 0.0, 0) for n in ("nexus-01", "nexus-02", "nexus-03")]
    finding = detect_zero_contribution(frame(rows, CONTRIB))
    assert_fired(finding, Severity.WARNING)
    assert "all 3 members show contribution 0" in finding.summary


def test_measured_contribution_passes() -> None:
    rows = [contribution("nexus-01", 100.0, 1.2, 5_000), contribution("nexus-03", 90.0, 0.0, 0)]
    assert_ok(detect_zero_contribution(frame(rows, CONTRIB)))


# --- runner, renderer, charts ------------------------------------------------------------


def empty_inputs(tables: set[str]) -> AuditInputs:
    """Every frame its SQL would return on an empty warehouse, for the tables present."""
    return AuditInputs(
        now=NOW,
        tables=frozenset(tables),
        frames={
            "node_status": pl.DataFrame(schema={"node_name": pl.String, "taken_at": TS}),
            "channels": frame([], CHANNELS),
            "pnl_daily": pl.DataFrame(
                schema={
                    "day": pl.Date,
                    "node_name": pl.String,
                    "revenue_msat": pl.Int64,
                    "forwards": pl.Int64,
                    "onchain_cost_msat": pl.Int64,
                }
            ),
            "heartbeats": frame([], HEARTBEATS),
            "alerts": frame([], ALERTS),
            "node_snapshots": frame([], SNAPSHOTS),
        },
    )


def test_missing_tables_make_detectors_not_measurable_not_crash() -> None:
    core = {t for spec in FRAMES for t in spec.tables if not t.startswith(("fleet_", "advisor"))}
    findings = {f.detector: f for f in run_detectors(empty_inputs(core), CONFIG)}
    assert len(findings) == 17
    for name in ("rejection_loop", "decisions_without_prediction"):
        assert findings[name].summary == (
            "not measurable: table advisor_decisions missing (migration not applied yet?)"
        )
    unassisted = findings["critical_member_unassisted"]
    assert not unassisted.ok and not unassisted.measurable
    assert unassisted.severity == Severity.INFO
    assert "fleet_assistance, fleet_member_health" in unassisted.summary
    assert not any(f.fired for f in findings.values())


def test_report_renders_every_section_like_the_audit() -> None:
    inputs = empty_inputs({t for spec in FRAMES for t in spec.tables})
    findings = run_detectors(inputs, CONFIG)
    findings[0] = detect_risky_config(["rebalance.chunk_sat=200000 exceeds half the median"])
    markdown = render_report(compose_report(inputs, findings, "run-1", {"pnl": "pnl.png"}))
    for heading in (
        "## Fleet Status",
        "**Net P&L: 0 sat**",
        "## P&L",
        "## Budget",
        "## Loop Freshness",
        "## WARNING Issues",
        "## Not Measurable",
        "## What's Working",
        "## Recommended Actions (Priority Order)",
        "![Cumulative net profit and loss per node](pnl.png)",
    ):
        assert heading in markdown
    assert "| **P1** | Review each value with `hiveops config check`" in markdown


@pytest.mark.parametrize(
    "png", [line_chart([[0, -5, 3, 10], [1, 2]]), bar_chart([(3, 0), (0, 1), (7, 2)])]
)
def test_plain_png_fallback_is_a_valid_rgb_image(png: bytes) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20]), int.from_bytes(png[20:24])
    idat_len = int.from_bytes(png[33:37])
    assert png[37:41] == b"IDAT"
    raw = zlib.decompress(png[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    assert set(raw) - {0, 255}  # something besides the white background was drawn
