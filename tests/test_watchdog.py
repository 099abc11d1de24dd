"""The watchdog: a loop whose last success is older than 2x its interval is stale, alerted once
per episode and failing the run; fresh loops are not; a stopped scheduler is named as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.watchdog import find_stale_loops, plan_alerts, summary_message
from flows.watchdog import watchdog
from models.orchestration import DEFAULT_INTERVALS_S, LoopFreshness, OrchestrationConfig
from tasks.ledger import heartbeat_finish, heartbeat_start
from warehouse import db

NOW = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
CONFIG = OrchestrationConfig(loops=("collect", "fees"), intervals_s={"collect": 600, "fees": 1800})


def row(loop: str, age_s: float | None, node: str = "nexus-02") -> LoopFreshness:
    last_ok = NOW - timedelta(seconds=age_s) if age_s is not None else None
    return LoopFreshness(loop=loop, node=node, last_ok_at=last_ok, runs=3)


def stale(rows: list[LoopFreshness], **kw: object) -> list[tuple[str, str | None, str]]:
    first = kw.pop("first", NOW - timedelta(days=3))
    found = find_stale_loops(rows, CONFIG, NOW, first_heartbeat_at=first, **kw)  # type: ignore[arg-type]
    return [(s.loop, s.node, s.reason) for s in found]


def test_loop_is_stale_only_past_twice_its_interval() -> None:
    assert stale([row("collect", 1200), row("fees", 3600)]) == []
    assert stale([row("collect", 1201), row("fees", 3600)]) == [("collect", "nexus-02", "stale")]


def test_never_run_loop_is_caught_once_the_install_has_run_longer_than_its_window() -> None:
    rows = [row("collect", 60)]
    assert stale(rows) == [("fees", None, "never_ran")]
    assert stale(rows, first=NOW - timedelta(seconds=3000)) == []  # fresh install: no alarm
    assert stale([], first=None) == []  # empty warehouse


def test_failing_node_is_stale_on_its_own_and_removed_nodes_are_ignored() -> None:
    rows = [
        row("collect", 60, "nexus-01"),
        row("collect", None, "nexus-02"),  # every run failed on this node
        row("collect", 9e5, "retired-node"),
        row("fees", 60, "*"),
    ]
    assert stale(rows, nodes=["nexus-01", "nexus-02"]) == [
        ("collect", "nexus-02", "never_succeeded")
    ]


def test_stopped_scheduler_is_named_when_the_watchdog_itself_missed_its_window() -> None:
    config = OrchestrationConfig(loops=("collect", "watchdog"))
    rows = [row("collect", 26 * 3600), row("watchdog", 26 * 3600, "*")]
    found = find_stale_loops(rows, config, NOW, first_heartbeat_at=NOW - timedelta(days=9))
    assert {s.severity for s in found} == {"critical"}
    message = summary_message(found)
    assert "scheduler" in message and "collect on nexus-02 last succeeded 26.0 h ago" in message


def test_one_alert_per_stale_episode_and_resolution_when_fresh_again() -> None:
    found = find_stale_loops(
        [row("collect", 5000), row("fees", 9000)], CONFIG, NOW, first_heartbeat_at=None
    )
    new, resolved = plan_alerts(found, {("collect", "nexus-02"): "a1", ("fees", "nexus-01"): "a2"})
    assert [(s.loop, s.node) for s in new] == [("fees", "nexus-02")]
    assert resolved == ["a2"]


def test_config_merges_partial_intervals_and_rejects_unknown_loops() -> None:
    config = OrchestrationConfig.model_validate({"intervals_s": {"fees": 900}})
    assert config.intervals_s == {**DEFAULT_INTERVALS_S, "fees": 900}
    assert config.stale_after_s("fees") == 1800
    with pytest.raises(ValidationError, match="unknown loop 'feez'"):
        OrchestrationConfig.model_validate({"intervals_s": {"feez": 900}})
    with pytest.raises(ValidationError, match="below 5s"):
        OrchestrationConfig.model_validate({"intervals_s": {"fees": 2}})
    with pytest.raises(ValidationError, match="http"):
        OrchestrationConfig(webhook_url="hooks.example/x")


# --- the flow, against a real warehouse and Prefect ------------------------------------------


def seed(wh: Path, ages_s: dict[str, float]) -> None:
    """An ok heartbeat per loop, `age_s` before NOW, after a first one three days ago."""
    first = NOW - timedelta(days=3)
    for loop, age_s in ages_s.items():
        node = "*" if loop in ("report", "watchdog") else "nexus-02"
        heartbeat_start.fn(wh, f"{loop}-0", loop, node, first)
        heartbeat_finish.fn(wh, f"{loop}-0", loop, node, first, ok=True)
        at = NOW - timedelta(seconds=age_s)
        heartbeat_start.fn(wh, f"{loop}-1", loop, node, at)
        heartbeat_finish.fn(wh, f"{loop}-1", loop, node, at, ok=True)


def stale_alerts(wh: Path) -> list[tuple[str, str | None, bool]]:
    with db.writer(wh) as con:
        rows = con.execute(
            "SELECT loop, node, resolved_at IS NULL FROM alerts WHERE kind = 'loop_stale' "
            "ORDER BY loop"
        ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text('warehouse_path = "w.duckdb"\n')
    return path


def test_watchdog_flow_fails_with_alert_rows_on_stale_heartbeats_and_passes_when_fresh(
    config_path: Path, prefect_harness: None
) -> None:
    wh = config_path.parent / "w.duckdb"
    fresh = {loop: 60.0 for loop in DEFAULT_INTERVALS_S}
    seed(wh, {**fresh, "collect": 3 * 3600})  # collect silent for 3 h (window 20 min)

    state = watchdog(config_path=str(config_path), now=NOW, return_state=True)
    assert state.is_failed()
    assert "collect on nexus-02 last succeeded 3.0 h ago" in (state.message or "")
    assert stale_alerts(wh) == [("collect", "nexus-02", True)]

    later = NOW + timedelta(minutes=15)
    state = watchdog(config_path=str(config_path), now=later, return_state=True)
    assert state.is_failed()
    assert stale_alerts(wh) == [("collect", "nexus-02", True)]  # still one row per episode

    seed(wh, {loop: -900.0 for loop in DEFAULT_INTERVALS_S})  # every loop ran at `later`
    state = watchdog(config_path=str(config_path), now=later, return_state=True)
    assert state.is_completed()
    assert stale_alerts(wh) == [("collect", "nexus-02", False)]  # episode resolved, no new row
