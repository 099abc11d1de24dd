"""What every detector shares: the audit's inputs, the not-measurable verdict, number formats."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from models.orchestration import LoopFreshness, OrchestrationConfig
from models.report import Finding, Severity

_SCID = re.compile(r"\b\d+x\d+x\d+\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
EMPTY_METRICS = frozenset({"", "{}", "[]", "null"})


@dataclass(frozen=True)
class FrameSpec:
    """One frame the report reads: its named query, the tables it needs, its time window."""

    name: str
    tables: tuple[str, ...]
    window: str  # "recent" | "history" | "all"


# The report's reads. A frame whose tables are missing is never queried: the detectors that
# need it say "not measurable: table X missing" instead.
FRAMES: tuple[FrameSpec, ...] = (
    FrameSpec("heartbeats", ("heartbeats",), "recent"),
    FrameSpec("alerts", ("alerts",), "recent"),
    FrameSpec("node_snapshots", ("node_snapshots", "nodes"), "recent"),
    FrameSpec("node_status", ("node_snapshots", "nodes"), "all"),
    FrameSpec("channels", ("channel_snapshots", "forwards", "fee_changes", "nodes"), "all"),
    FrameSpec("fleet_member_ids", ("fleet_members",), "all"),
    FrameSpec("rebalance_attempts", ("rebalance_attempts", "nodes"), "history"),
    FrameSpec("rebalance_costs", ("rebalance_attempts", "nodes"), "all"),
    FrameSpec("advisor_decisions", ("advisor_decisions",), "history"),
    FrameSpec("budget_rows", ("budget_ledger", "nodes"), "history"),
    FrameSpec("fee_outcomes", ("fee_outcomes",), "history"),
    FrameSpec("member_health", ("fleet_member_health",), "all"),
    FrameSpec("assistance", ("fleet_assistance",), "history"),
    FrameSpec("contribution", ("fleet_contribution",), "all"),
    FrameSpec("pnl_daily", ("forwards", "onchain_costs", "bkpr_income", "nodes"), "all"),
    FrameSpec(
        "reconciliation",
        ("ledger_reconciliation", "bkpr_income", "heartbeats", "rebalance_attempts", "nodes"),
        "all",
    ),
    FrameSpec("external_changes", ("external_changes", "nodes"), "history"),
    FrameSpec("channel_returns", ("channel_returns", "nodes"), "history"),
)
FRAME_TABLES: dict[str, tuple[str, ...]] = {f.name: f.tables for f in FRAMES}


@dataclass(frozen=True)
class AuditInputs:
    """Everything the detectors judge, read once by the report task."""

    now: datetime
    tables: frozenset[str]
    frames: Mapping[str, pl.DataFrame]
    freshness: tuple[LoopFreshness, ...] = ()
    first_heartbeat_at: datetime | None = None
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    node_names: tuple[str, ...] = ()
    config_warnings: tuple[str, ...] = ()

    def missing(self, tables: Iterable[str]) -> list[str]:
        return [t for t in tables if t not in self.tables]

    def frame(self, name: str) -> pl.DataFrame:
        """The frame, or an error naming the missing tables (detectors check `missing` first)."""
        if name not in self.frames:
            raise KeyError(f"frame {name} was not loaded (tables {FRAME_TABLES.get(name)})")
        return self.frames[name]

    def member_ids(self) -> frozenset[str]:
        ids = self.frames.get("fleet_member_ids")
        return frozenset(ids["node_id"].to_list()) if ids is not None else frozenset()


def not_measurable(detector: str, why: str, evidence: dict[str, Any] | None = None) -> Finding:
    return Finding(
        detector=detector,
        ok=False,
        measurable=False,
        severity=Severity.INFO,
        summary=f"not measurable: {why}",
        evidence=evidence or {},
    )


def passed(detector: str, summary: str, evidence: dict[str, Any] | None = None) -> Finding:
    return Finding(
        detector=detector, ok=True, severity=Severity.INFO, summary=summary, evidence=evidence or {}
    )


def fired(
    detector: str,
    severity: Severity,
    summary: str,
    action: str,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    return Finding(
        detector=detector,
        ok=False,
        severity=severity,
        summary=summary,
        action=action,
        evidence=evidence or {},
    )


def utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def sat(msat: int | float | None) -> str:
    """msat as a readable sat amount: 1,234 sat, 55.0M sat."""
    if msat is None:
        return "n/a"
    value = msat / 1000
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M sat"
    return f"{value:,.0f} sat"


def counts(values: Iterable[Any]) -> dict[str, int]:
    """Occurrences of each value, most frequent first."""
    found: dict[str, int] = {}
    for value in values:
        key = str(value)
        found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def reason_kind(text: str) -> str:
    """A reason with its channel ids and numbers blanked, so like reasons count together."""
    return _NUMBER.sub("N", _SCID.sub("<scid>", text))


def fmt_counts(found: Mapping[str, int], limit: int = 4) -> str:
    items = list(found.items())
    text = ", ".join(f"{k} ×{v}" for k, v in items[:limit])
    return text + (f", … {len(items) - limit} more" if len(items) > limit else "")
