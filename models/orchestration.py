"""How often each loop runs and who hears about it when one fails or falls silent.

The audit's first finding was a loop that had not run for five days without anyone noticing; the
intervals here drive the schedules (`hiveops serve`), the staleness automations (`hiveops alerts
install`) and the watchdog flow, so all three agree on what "late" means.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_INTERVALS_S: dict[str, int] = {
    "collect": 600,
    "fees": 1_800,
    "rebalance": 900,
    "outcomes": 3_600,
    "advisor": 3_600,
    "fleet": 3_600,
    "report": 86_400,
    "watchdog": 900,
}
LOOPS: tuple[str, ...] = tuple(DEFAULT_INTERVALS_S)
# Prefect refuses proactive automations with a window under 10 s; staleness is 2x the interval.
MIN_INTERVAL_S = 5
# A cron schedule's "interval" is its longest gap between runs over this horizon (a weekday-only
# schedule waits 3 days over a weekend, and staleness must not fire on Sunday).
CRON_HORIZON_S = 8 * 86_400


@lru_cache(maxsize=256)
def cron_longest_gap_s(cron: str, timezone: str) -> int:
    """The longest wait between two consecutive fire times of `cron` in `timezone`, over the
    next 8 days (with the cron parser Prefect's scheduler uses, so DST counts as it will)."""
    from prefect._vendor.croniter import croniter

    start = datetime.now(ZoneInfo(timezone)).replace(second=0, microsecond=0)
    it = croniter(cron, start)
    previous = it.get_next(datetime)
    longest = 0.0
    while (previous - start).total_seconds() < CRON_HORIZON_S:
        following = it.get_next(datetime)
        longest = max(longest, (following - previous).total_seconds())
        previous = following
    return int(longest)


class LoopSchedule(BaseModel):
    """One loop's schedule: every `interval_s` seconds, or at the times of a cron expression
    read in an IANA `timezone` (`{ cron = "0 6 * * *", timezone = "Europe/Berlin" }`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: int | None = Field(default=None, ge=MIN_INTERVAL_S)
    cron: str | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_kind(self) -> LoopSchedule:
        if (self.interval_s is None) == (self.cron is None):
            raise ValueError(
                'give exactly one of interval_s (seconds) or cron (e.g. cron = "0 6 * * *", '
                'timezone = "Europe/Berlin")'
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, "
                f"America/New_York)"
            ) from None
        if self.cron is not None:
            from prefect.client.schemas.schedules import CronSchedule
            from pydantic import ValidationError

            try:
                CronSchedule(cron=self.cron, timezone=self.timezone)
            except ValidationError:
                raise ValueError(
                    f"cron {self.cron!r} is not a cron expression Prefect accepts: five fields "
                    f'minute hour day-of-month month day-of-week, e.g. "30 6 * * 1-5"'
                ) from None
            if cron_longest_gap_s(self.cron, self.timezone) < MIN_INTERVAL_S:
                raise ValueError(f"cron {self.cron!r} fires more often than every 5 s")
        return self

    @property
    def expected_gap_s(self) -> int:
        """How long a healthy loop may wait between runs (the staleness clock's unit)."""
        if self.interval_s is not None:
            return self.interval_s
        assert self.cron is not None
        return cron_longest_gap_s(self.cron, self.timezone)

    def describe(self) -> str:
        if self.interval_s is not None:
            return f"every {self.interval_s}s"
        return f"cron {self.cron!r} ({self.timezone})"


class OrchestrationConfig(BaseModel):
    """`[orchestration]` in hiveops.toml: per-loop cadence, staleness factor, alert targets and
    the dead man's switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The loops this installation runs: serve schedules them, alerts and the watchdog watch them.
    loops: tuple[str, ...] = LOOPS
    intervals_s: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_INTERVALS_S))
    stale_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    # `[orchestration.schedules] report = { cron = "0 6 * * *", timezone = "Europe/Berlin" }`:
    # replaces that loop's interval (intervals_s stays the short form for interval schedules).
    schedules: dict[str, LoopSchedule] = Field(default_factory=dict)
    webhook_url: str | None = None
    # apprise URLs (tgram://, slack://, discord://, mailto://, ntfy://, json://, https://...)
    notify_urls: tuple[str, ...] = ()
    # healthchecks.io-style dead man's switch: each watchdog run pings it (`/fail` when stale).
    deadman_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        # `[orchestration.intervals_s] fees = 900` overrides one loop and keeps the others.
        if isinstance(data, dict) and isinstance(data.get("intervals_s"), dict):
            data = {**data, "intervals_s": {**DEFAULT_INTERVALS_S, **data["intervals_s"]}}
        return data

    @field_validator("loops")
    @classmethod
    def _known_loop_names(cls, loops: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [loop for loop in loops if loop not in DEFAULT_INTERVALS_S]
        if unknown:
            raise ValueError(f"unknown loop(s) {', '.join(unknown)}; known: {', '.join(LOOPS)}")
        return loops

    @field_validator("intervals_s")
    @classmethod
    def _known_loops(cls, intervals: dict[str, int]) -> dict[str, int]:
        for loop, seconds in intervals.items():
            if loop not in DEFAULT_INTERVALS_S:
                raise ValueError(f"unknown loop {loop!r}; intervals exist for {', '.join(LOOPS)}")
            if seconds < MIN_INTERVAL_S:
                raise ValueError(
                    f"{loop} interval {seconds}s is below {MIN_INTERVAL_S}s; Prefect cannot "
                    f"watch a staleness window shorter than 10 s"
                )
        return intervals

    @field_validator("schedules")
    @classmethod
    def _known_schedule_loops(cls, schedules: dict[str, LoopSchedule]) -> dict[str, LoopSchedule]:
        unknown = [loop for loop in schedules if loop not in DEFAULT_INTERVALS_S]
        if unknown:
            raise ValueError(f"unknown loop(s) {', '.join(unknown)}; known: {', '.join(LOOPS)}")
        return schedules

    @field_validator("notify_urls")
    @classmethod
    def _notify_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        from models.notify import check_notify_url

        return tuple(check_notify_url(url) for url in urls)

    @field_validator("deadman_url")
    @classmethod
    def _deadman_http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(
                f"deadman_url {url!r} must start with http:// or https:// (a healthchecks.io "
                f"check's ping URL, e.g. https://hc-ping.com/<uuid>)"
            )
        return url.rstrip("/") if url else url

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url {url!r} must start with http:// or https://")
        return url

    def schedule(self, loop: str) -> LoopSchedule:
        return self.schedules.get(loop) or LoopSchedule(interval_s=self.intervals_s[loop])

    def interval_s(self, loop: str) -> int:
        """The longest a healthy loop waits between runs: its interval, or its cron's widest gap."""
        return self.schedule(loop).expected_gap_s

    def stale_after_s(self, loop: str) -> int:
        """How long a loop may go without a successful run before it counts as stale."""
        return max(10, round(self.interval_s(loop) * self.stale_factor))


def orchestration_of(settings: Any) -> OrchestrationConfig:
    """The settings' `[orchestration]` section, or the defaults when Settings has none."""
    found = getattr(settings, "orchestration", None)
    if isinstance(found, OrchestrationConfig):
        return found
    if isinstance(found, dict):
        return OrchestrationConfig.model_validate(found)
    return OrchestrationConfig()


class LoopFreshness(BaseModel):
    """One row of the warehouse's `loop_freshness` view: a loop's last success on one node."""

    model_config = ConfigDict(frozen=True)

    loop: str
    node: str
    last_ok_at: datetime | None = None
    last_started_at: datetime | None = None
    failed_runs: int = 0
    runs: int = 0


class StaleLoop(BaseModel):
    """A loop (on one node, or as a whole when `node` is None) that missed its window."""

    model_config = ConfigDict(frozen=True)

    loop: str
    node: str | None
    reason: str  # never_ran | never_succeeded | stale
    last_ok_at: datetime | None
    age_s: int
    interval_s: int
    stale_after_s: int
    severity: str  # warning | critical

    @property
    def key(self) -> tuple[str, str]:
        return (self.loop, self.node or "")

    def describe(self) -> str:
        where = f"{self.loop} on {self.node}" if self.node and self.node != "*" else self.loop
        if self.reason == "never_ran":
            what = f"has not run in {span(self.age_s)} of operation"
        elif self.reason == "never_succeeded":
            what = f"has never succeeded ({span(self.age_s)} of operation)"
        else:
            what = f"last succeeded {span(self.age_s)} ago"
        return (
            f"{where} {what}; expected every {span(self.interval_s)}, stale after "
            f"{span(self.stale_after_s)}"
        )


def span(seconds: float) -> str:
    """A duration as people read it in an alert: 90 s, 15 min, 3.0 h, 2.5 d."""
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 2 * 3_600:
        return f"{seconds / 3_600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
