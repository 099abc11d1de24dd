"""The self-audit's contracts: what a detector found, and the thresholds it judged against.

The 2026-02 audit was written by hand after five silent days. Each of its failure classes is now
a detector whose `Finding` says, with numbers, whether that class is present today, what proves
it and what to do; a detector that cannot look (a table missing, nothing to measure yet) says so
instead of passing silently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY_S = 86_400


class Severity(StrEnum):
    """The alerts table's severities; the report's priorities follow them (P0, P1, P2)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def priority(self) -> str:
        return {"critical": "P0", "warning": "P1", "info": "P2"}[self.value]


class Finding(BaseModel):
    """One detector's verdict.

    `ok` is true only when the detector looked and found nothing wrong. A detector that could not
    look has `measurable=False`, `ok=False` and severity info: "not measured" is never "fine".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    detector: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    ok: bool
    severity: Severity
    summary: str = Field(min_length=1)
    evidence: dict[str, Any] = Field(default_factory=dict)
    action: str = ""
    measurable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Finding:
        if not self.measurable and self.ok:
            raise ValueError(f"finding {self.detector}: an unmeasurable finding cannot be ok")
        if not self.ok and self.measurable and not self.action:
            raise ValueError(f"finding {self.detector}: a failed detector must recommend an action")
        return self

    @property
    def fired(self) -> bool:
        """The failure class is present (measured, not ok): this raises an alert row."""
        return self.measurable and not self.ok

    @property
    def status(self) -> str:
        return "ok" if self.ok else "fired" if self.measurable else "not_measurable"


class ReportConfig(BaseModel):
    """Thresholds of the self-audit (`[report]` once Settings carries it; defaults otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # "recent": failures, alerts and zero snapshots counted over this window
    recent_window_s: int = Field(default=DAY_S, gt=0)
    # decisions, outcomes and budget rows are judged over this longer window
    history_window_s: int = Field(default=7 * DAY_S, gt=0)
    rebalance_recent_attempts: int = Field(default=5, ge=1)
    rebalance_min_attempts: int = Field(default=3, ge=1)
    one_sided_low_share: float = Field(default=0.05, ge=0, lt=0.5)
    one_sided_high_share: float = Field(default=0.95, gt=0.5, le=1)
    one_sided_max_fraction: float = Field(default=0.25, ge=0, le=1)
    cold_start_days: int = Field(default=7, ge=1)
    rejection_streak: int = Field(default=5, ge=2)
    fee_outcomes_min: int = Field(default=3, ge=1)
    assistance_grace_s: int = Field(default=DAY_S, ge=0)
    fleet_fee_ppm: int = Field(default=0, ge=0)


def report_config_of(settings: Any) -> ReportConfig:
    """The settings' `[report]` section, or the defaults while Settings has none."""
    found = getattr(settings, "report", None)
    if isinstance(found, ReportConfig):
        config = found
    elif isinstance(found, dict):
        config = ReportConfig.model_validate(found)
    else:
        config = ReportConfig()
    fees = getattr(settings, "fees", None)
    if fees is not None:
        config = config.model_copy(update={"fleet_fee_ppm": fees.fleet_fee_ppm})
    return config
