"""Detectors of the fleet layer: a critical member nobody helps, contribution that reads 0
(audit findings 10 and 12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from engine.report.base import counts, fired, fmt_counts, not_measurable, passed
from models.orchestration import span
from models.report import Finding, ReportConfig, Severity

HELPING_STATES = ("open", "accepted")
HELPING_RESULTS = ("helped", "partial")


def detect_critical_member_unassisted(
    health: pl.DataFrame, assistance: pl.DataFrame, config: ReportConfig, now: datetime
) -> Finding:
    """A member critical for longer than the grace period with no assistance under way or done.

    Rows that ended `not_possible` or `could_not_help` do not count as help: they are shown with
    their reasons, since "nothing could be done" is the finding, not an excuse.
    """
    name = "critical_member_unassisted"
    if health.is_empty():
        return not_measurable(name, "the fleet loop has not scored any member yet")
    critical = health.filter(pl.col("tier") == "critical")
    members: list[dict[str, Any]] = []
    parts: list[str] = []
    for r in critical.iter_rows(named=True):
        since = r["tier_since"] or r["measured_at"]
        age_s = (now - since).total_seconds()
        rows = assistance.filter(
            (pl.col("node_id") == r["node_id"]) & (pl.col("requested_at") >= since)
        )
        helping = rows.filter(
            pl.col("state").is_in(HELPING_STATES) | pl.col("result").is_in(HELPING_RESULTS)
        )
        outcomes = counts(rows["result"].fill_null(rows["state"]).to_list())
        score = round(float(r["health_score"]), 1)
        members.append(
            {
                "member": r["name"],
                "health_score": score,
                "critical_for_s": int(age_s),
                "actions": rows.height,
                "helping": helping.height,
                "outcomes": outcomes,
                "reasons": counts(rows["decision_note"].drop_nulls().to_list()),
            }
        )
        if helping.is_empty() and age_s >= config.assistance_grace_s:
            done = (
                f"{rows.height} action(s), none helped ({fmt_counts(outcomes)})"
                if rows.height
                else "no assistance action at all"
            )
            parts.append(f"{r['name']} critical (health {score}) for {span(age_s)}: {done}")
    evidence = {"members": health.height, "critical": members}
    if not parts:
        text = (
            f"{critical.height} critical member(s), each being helped or critical for less "
            f"than {span(config.assistance_grace_s)}"
            if critical.height
            else f"no critical member among {health.height}"
        )
        return passed(name, text, evidence)
    return fired(
        name,
        Severity.WARNING,
        "; ".join(parts),
        "Help the member: open channels to it (approve its channel_open proposal) or let a "
        "healthy member push liquidity (fleet.assist_* bounds, rebalance budget); if nothing can "
        "help, reduce its channel count",
        evidence,
    )


def detect_zero_contribution(contribution: pl.DataFrame) -> Finding:
    """Contribution rows that read 0 for every member, or members at 0% uptime."""
    name = "zero_contribution"
    if contribution.is_empty():
        return not_measurable(name, "the fleet loop has not measured contribution yet")
    zero_expr = (
        (pl.col("uptime_pct").fill_null(0) == 0)
        & (pl.col("contribution_ratio").fill_null(0) == 0)
        & (pl.col("forwarded_for_members_msat") == 0)
        & (pl.col("forwarded_by_members_msat") == 0)
        & (pl.col("assist_given_msat") == 0)
        & (pl.col("assist_received_msat") == 0)
    )
    zero = contribution.filter(zero_expr)
    down = contribution.filter(
        (pl.col("uptime_pct").fill_null(0) == 0) & (pl.col("cycles_expected") > 0)
    )
    evidence = {
        "members": contribution.height,
        "all_zero": zero["name"].to_list(),
        "zero_uptime": down["name"].to_list(),
        "rows": contribution.select(
            "name", "uptime_pct", "contribution_ratio", "cycles_expected", "cycles_up"
        ).to_dicts(),
    }
    if zero.height < contribution.height and down.is_empty():
        return passed(
            name,
            f"{contribution.height} members with contribution data; uptime "
            + ", ".join(
                f"{r['name']} {r['uptime_pct'] or 0:.0f}%"
                for r in contribution.iter_rows(named=True)
            ),
            evidence,
        )
    problems = []
    if zero.height == contribution.height:
        problems.append(
            f"all {contribution.height} members show contribution 0, uptime 0 and nothing "
            "forwarded or assisted"
        )
    if not down.is_empty():
        problems.append(
            f"{down.height} member(s) at 0% uptime over their window: "
            + ", ".join(down["name"].to_list())
        )
    return fired(
        name,
        Severity.WARNING,
        "; ".join(problems),
        "Check that collect snapshots every member each cycle (uptime is counted from them) "
        "and that the fleet loop runs; a member at 0% uptime is down or unreachable",
        evidence,
    )
