"""The daily self-audit as markdown, shaped like the hand-written 2026-02 audit: fleet status,
P&L, budget, what is broken (with numbers), what works, recommended actions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from engine.report.base import sat
from engine.report.charts import PnlTotals
from engine.report.detectors import TITLES
from models.orchestration import LoopFreshness, span
from models.report import Finding, Severity

EVIDENCE_ITEMS = 5
# Control characters (C0 but newline, DEL, C1): a node's alias or error text can carry any.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_MARKUP = re.compile(r"([\\`*\[\]|#])")


def inert(text: str) -> str:
    """Data (node answers, aliases, error messages) as one line of markdown that renders as
    the text itself: no markup, no table cell break, no new line."""
    return _MARKUP.sub(r"\\\1", _CONTROL.sub(" ", text).replace("\n", " "))


def sanitize(document: str) -> str:
    """The whole report: no control characters, no HTML (the report has none of its own)."""
    text = _CONTROL.sub(" ", document)
    return text.replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class ReportContext:
    generated_at: datetime
    run_id: str
    findings: Sequence[Finding]
    node_status: pl.DataFrame  # report_audit.node_status
    pnl_nodes: Sequence[PnlTotals]
    pnl_fleet: PnlTotals
    first_day: str | None = None
    budget_latest: Sequence[dict[str, Any]] = ()
    freshness: Sequence[LoopFreshness] = ()
    watched_loops: Sequence[str] = ()  # loops with no heartbeat at all are listed as "never"
    balance_buckets: Sequence[dict[str, Any]] = ()
    charts: dict[str, str] = field(default_factory=dict)  # chart name -> file name
    charts_note: str = ""


def render_report(ctx: ReportContext) -> str:
    fired = [f for f in ctx.findings if f.fired]
    unmeasured = [f for f in ctx.findings if not f.measurable]
    working = [f for f in ctx.findings if f.ok]
    lines = [
        f"# hiveops self-audit: {ctx.generated_at:%Y-%m-%d}",
        f"**Generated**: {ctx.generated_at:%Y-%m-%d %H:%M} UTC by the `report` flow "
        f"(run `{ctx.run_id}`)  ",
        f"**Scope**: {len(ctx.findings)} detectors, one per failure class of the 2026-02 audit: "
        f"**{len(fired)} fired**, {len(working)} ok, {len(unmeasured)} not measurable",
        "",
        "---",
        "",
        *_fleet_status(ctx),
        *_pnl(ctx),
        *_budget(ctx),
        *_freshness(ctx),
    ]
    for severity, heading in (
        (Severity.CRITICAL, "CRITICAL Issues"),
        (Severity.WARNING, "WARNING Issues"),
        (Severity.INFO, "Other Issues"),
    ):
        group = [f for f in fired if f.severity == severity]
        if group:
            lines += [f"## {heading}", ""]
            for n, finding in enumerate(group, start=1):
                lines += _issue(n, finding)
    if not fired:
        lines += ["## Issues", "", "No detector fired.", ""]
    if unmeasured:
        lines += ["## Not Measurable", ""]
        lines += [f"- **{TITLES.get(f.detector, f.detector)}**: {f.summary}" for f in unmeasured]
        lines.append("")
    lines += ["## What's Working", ""]
    lines += [
        f"{n}. **{TITLES.get(f.detector, f.detector)}**: {f.summary}"
        for n, f in enumerate(working, 1)
    ] or ["Nothing could be confirmed as working."]
    lines += ["", *_balance(ctx), *_actions(fired)]
    return sanitize("\n".join(lines).rstrip() + "\n")


def _fleet_status(ctx: ReportContext) -> list[str]:
    status = ctx.node_status
    names = status["node_name"].to_list() if not status.is_empty() else []
    out = ["## Fleet Status", "", f"- **Nodes**: {len(names)} ({', '.join(names) or 'none'})"]
    for r in status.iter_rows(named=True) if not status.is_empty() else []:
        if r["taken_at"] is None:
            out.append(f"- **{r['node_name']}**: no snapshot yet")
            continue
        capacity = r["capacity_msat"] or 0
        local_pct = round(100 * (r["local_msat"] or 0) / capacity) if capacity else 0
        age_s = (ctx.generated_at - r["taken_at"]).total_seconds()
        out.append(
            f"- **{r['node_name']}**: {r['num_channels']} channels, {sat(capacity)} capacity, "
            f"{local_pct}% local / {100 - local_pct}% remote (snapshot {span(age_s)} old)"
        )
    fleet = ctx.pnl_fleet
    since = f" since {ctx.first_day}" if ctx.first_day else ""
    verdict = "operating at a loss" if fleet.net_msat < 0 else "operating at a profit"
    out += [
        f"- **Total revenue earned**: {sat(fleet.revenue_msat)} ({fleet.forwards} forwards{since})",
        f"- **Total costs**: {sat(fleet.cost_msat)} (on-chain {sat(fleet.onchain_cost_msat)}, "
        f"rebalance fees {sat(fleet.rebalance_cost_msat)})",
        f"- **Net P&L: {sat(fleet.net_msat)}** ({verdict})",
        "",
    ]
    return out


def _pnl(ctx: ReportContext) -> list[str]:
    out = [
        "## P&L",
        "",
        "| Node | Forwards | Revenue | On-chain costs | Rebalance fees | Net |",
        "|------|---------:|--------:|---------------:|---------------:|----:|",
    ]
    for t in [*ctx.pnl_nodes, ctx.pnl_fleet]:
        name = f"**{t.node_name}**" if t is ctx.pnl_fleet else t.node_name
        out.append(
            f"| {name} | {t.forwards} | {sat(t.revenue_msat)} | {sat(t.onchain_cost_msat)} | "
            f"{sat(t.rebalance_cost_msat)} | {sat(t.net_msat)} |"
        )
    out.append("")
    if "pnl" in ctx.charts:
        # Alt text in plain words: an "&" here reached the UI's alt attribute as a literal "&amp;".
        out += [f"![Cumulative net profit and loss per node]({ctx.charts['pnl']})", ""]
    return out


def _budget(ctx: ReportContext) -> list[str]:
    out = ["## Budget", ""]
    if not ctx.budget_latest:
        return [*out, "No budget_ledger rows in the window.", ""]
    out += [
        "| Node | Day | Budget | Earned | Rebalance spent | On-chain spent | Reserved |",
        "|------|-----|-------:|-------:|----------------:|---------------:|---------:|",
    ]
    for r in ctx.budget_latest:
        out.append(
            f"| {r['node_name']} | {r['day']} | {sat(r['budget_msat'])} | {sat(r['earned_msat'])} "
            f"| {sat(r['rebalance_spent_msat'])} | {sat(r['onchain_spent_msat'])} | "
            f"{sat(r['reserved_msat'])} |"
        )
    return [*out, ""]


def _freshness(ctx: ReportContext) -> list[str]:
    out = ["## Loop Freshness", ""]
    seen = {r.loop for r in ctx.freshness}
    never = [loop for loop in ctx.watched_loops if loop not in seen]
    if not ctx.freshness and not never:
        return [*out, "No heartbeat yet.", ""]
    out += ["| Loop | Node | Last success | Runs | Failed |", "|---|---|---|---:|---:|"]
    out += [f"| {loop} | - | **never ran** | 0 | 0 |" for loop in never]
    for r in ctx.freshness:
        if r.last_ok_at is None:
            last = "never"
        else:
            age_s = (ctx.generated_at - r.last_ok_at).total_seconds()
            last = f"{span(age_s)} ago"
        out.append(f"| {r.loop} | {r.node} | {last} | {r.runs} | {r.failed_runs} |")
    return [*out, ""]


def _issue(n: int, f: Finding) -> list[str]:
    out = [f"### {n}. {TITLES.get(f.detector, f.detector)}", _one_line(f.summary), ""]
    for key, value in f.evidence.items():
        out.append(f"- {inert(str(key))}: {_evidence(value)}")
    return [*out, "", f"**Fix**: {f.action}", ""]


def _evidence(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(_evidence(v) for v in value[:EVIDENCE_ITEMS])
        more = f" … {len(value) - EVIDENCE_ITEMS} more" if len(value) > EVIDENCE_ITEMS else ""
        return f"[{shown}{more}]" if value else "none"
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{inert(str(k))}: {_evidence(v)}" for k, v in items[:EVIDENCE_ITEMS])
        more = f" … {len(items) - EVIDENCE_ITEMS} more" if len(items) > EVIDENCE_ITEMS else ""
        return "{" + shown + more + "}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return inert(str(value))


def _one_line(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


def _balance(ctx: ReportContext) -> list[str]:
    out = ["## Channel Balance Distribution", ""]
    if "balance" in ctx.charts:
        out += [f"![Channels by local share]({ctx.charts['balance']})", ""]
    if ctx.balance_buckets:
        out += ["| Local share | External | Fleet |", "|---|---:|---:|"]
        out += [f"| {b['bucket']} | {b['external']} | {b['fleet']} |" for b in ctx.balance_buckets]
        out.append("")
    if ctx.charts_note:
        out += [f"_{ctx.charts_note}_", ""]
    return out


def _actions(fired: Sequence[Finding]) -> list[str]:
    out = ["## Recommended Actions (Priority Order)", ""]
    if not fired:
        return [*out, "None: no detector fired.", ""]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    out += ["| Priority | Action | Finding |", "|----------|--------|---------|"]
    for f in sorted(fired, key=lambda f: order[f.severity]):
        summary = f.summary if len(f.summary) <= 90 else f.summary[:87] + "..."
        out.append(
            f"| **{f.severity.priority}** | {_cell(f.action)} | "
            f"{TITLES.get(f.detector, f.detector)}: {_cell(summary)} |"
        )
    return [*out, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
