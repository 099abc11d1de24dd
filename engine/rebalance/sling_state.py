"""What became of a sling-once job, from sling's own cumulative stats (pure).

sling keeps no per-job record we can ask for: `sling-stats <scid> json` gives 30-day totals per
channel (whole sats, floors of sums) and `sling-stats json` a status per channel. So the flow
stores the totals just before `sling-once` and reads the job's result as the difference. Fee
precision is therefore whole sats; a success books Δspent sats, never less than sling reports.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.rebalance import MSAT_PER_SAT, JobObservation, JobStatus

FAILURE_STATES = frozenset(
    {
        "NoCandidates",
        "HTLCcapped",
        "Disconnected",
        "PeerNotFound",
        "PeerNotReady",
        "PeerBad",
        "ChanNotNormal",
        "GraphEmpty",
        "ChanNotInGraph",
        "NoRoutes",
        "NoCheapRoute",
        "Error",
    }
)
RUNNING_STATES = frozenset({"NotStarted", "Starting", "Rebalancing", "Stopping"})
# A sling-once that has failed this many route attempts without a success is stopped: it
# would otherwise retry forever on a reservation that blocks the channel.
MAX_FAILED_TRIES = 3


class SlingTotals(BaseModel):
    """One channel's sling-stats totals (the successes and failures windows)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rebalances: int = Field(default=0, ge=0)
    amount_sat: int = Field(default=0, ge=0)
    spent_sat: int = Field(default=0, ge=0)
    tried: int = Field(default=0, ge=0)
    last_partner: str | None = None
    failure_reasons: tuple[str, ...] = ()

    @classmethod
    def from_detail(cls, detail: dict[str, Any] | None) -> SlingTotals:
        """From `sling-stats <scid> json`; tolerant of null windows and missing keys."""
        detail = detail or {}
        ok = detail.get("successes_in_time_window") or {}
        bad = detail.get("failures_in_time_window") or {}
        reasons = tuple(
            str(r.get("failure_reason"))
            for r in bad.get("top_5_failure_reasons") or []
            if r.get("failure_reason")
        )
        return cls(
            rebalances=int(ok.get("total_rebalances") or 0),
            amount_sat=int(ok.get("total_amount_sats") or 0),
            spent_sat=int(ok.get("total_spent_sats") or 0),
            tried=int(bad.get("total_rebalances_tried") or 0),
            last_partner=ok.get("last_channel_partner"),
            failure_reasons=reasons,
        )


def job_state(summary_status: list[str] | None) -> str | None:
    """'1:NoRoutes' -> 'NoRoutes' (first task's state); None when sling lists no such job."""
    if not summary_status:
        return None
    return str(summary_status[0]).split(":", 1)[-1]


def observe_job(
    attempt_id: str,
    *,
    before: SlingTotals | None,
    after: SlingTotals,
    has_job: bool,
    state: str | None,
) -> JobObservation:
    """The attempt's status from the stats difference and the job's current state.

    Without `before` (the run died between reserving and reading stats) nothing can be credited
    to this attempt: a job still present is treated as failed (to be stopped), else gone.
    """
    if before is None:
        if has_job:
            return JobObservation(
                attempt_id=attempt_id,
                status=JobStatus.FAILED,
                failure_reason="started without a stats baseline (crashed run); stopped",
            )
        return JobObservation(attempt_id=attempt_id, status=JobStatus.GONE)
    done = after.rebalances - before.rebalances
    if done > 0:
        return JobObservation(
            attempt_id=attempt_id,
            status=JobStatus.SUCCEEDED,
            fee_msat=max(0, after.spent_sat - before.spent_sat) * MSAT_PER_SAT,
            moved_msat=max(0, after.amount_sat - before.amount_sat) * MSAT_PER_SAT,
        )
    failed_tries = after.tried - before.tried
    reason = _reason(state, after, before)
    if has_job and state in RUNNING_STATES and failed_tries < MAX_FAILED_TRIES:
        return JobObservation(attempt_id=attempt_id, status=JobStatus.RUNNING)
    if has_job and state not in FAILURE_STATES and failed_tries == 0:
        return JobObservation(attempt_id=attempt_id, status=JobStatus.RUNNING)
    if not has_job and failed_tries == 0:
        return JobObservation(attempt_id=attempt_id, status=JobStatus.GONE)
    return JobObservation(attempt_id=attempt_id, status=JobStatus.FAILED, failure_reason=reason)


def _reason(state: str | None, after: SlingTotals, before: SlingTotals) -> str:
    tries = after.tried - before.tried
    parts = [state] if state in FAILURE_STATES else []
    if after.failure_reasons:
        parts.append("sling reports " + ", ".join(after.failure_reasons[:3]))
    parts.append(f"{tries} failed route attempt(s)")
    return "; ".join(p for p in parts if p)
