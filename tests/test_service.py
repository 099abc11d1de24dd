"""`hiveops service`: unit text that restarts on failure and points the scheduler at the server;
status that names installed-but-disabled units and deployments nobody polls, against a real
Prefect server."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

from engine.service_status import deployment_problems
from hiveops.service import (
    SCHEDULER_UNIT,
    SERVER_UNIT,
    install,
    make_plan,
    render_units,
    service_report,
)
from models.service import DeploymentState


def plan_for(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    config = tmp_path / "hiveops.toml"
    config.write_text('warehouse_path = "w.duckdb"\n')
    args = argparse.Namespace(
        config=config,
        user=kw.get("user", True),
        unit_dir=tmp_path / "units",
        port=4311,
        scheduler=kw.get("scheduler", "serve"),
        pool="hiveops",
    )
    return make_plan(args)


def test_units_restart_on_failure_and_the_scheduler_uses_the_units_server(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    units = render_units(plan)
    server, scheduler = units[SERVER_UNIT], units[SCHEDULER_UNIT]
    assert "-m prefect server start" in server
    assert 'Environment="PREFECT_SERVER_API_PORT=4311"' in server
    assert "Restart=always" in server and "Restart=always" in scheduler
    assert "WantedBy=default.target" in server  # --user
    assert f"-m hiveops.cli serve --config {tmp_path / 'hiveops.toml'}" in scheduler
    assert 'Environment="PREFECT_API_URL=http://127.0.0.1:4311/api"' in scheduler
    assert f"Requires={SERVER_UNIT}" in scheduler and f"After={SERVER_UNIT}" in scheduler
    assert "wait_healthy('http://127.0.0.1:4311/api', 300)" in scheduler
    assert "User=" not in server  # user units run as their user
    system = render_units(plan_for(tmp_path, user=False, scheduler="worker"))
    assert "WantedBy=multi-user.target" in system[SERVER_UNIT]
    assert "User=" in system[SERVER_UNIT]
    assert "-m prefect worker start --pool hiveops" in system[SCHEDULER_UNIT]


def test_without_systemd_install_prints_units_and_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_for(tmp_path)
    assert install(plan, systemd=False, print_only=True) == 0
    out = capsys.readouterr().out
    assert "[Service]" in out and "Restart=always" in out
    assert f"systemctl --user enable --now {SERVER_UNIT} {SCHEDULER_UNIT}" in out
    assert not (tmp_path / "units").exists()  # nothing half-installed


def test_deployment_problems_name_paused_and_unpolled_ones() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    problems = deployment_problems(
        [
            DeploymentState(name="collect", paused=False, last_polled=now - timedelta(seconds=5)),
            DeploymentState(name="fees", paused=False, last_polled=None),
            DeploymentState(name="report", paused=False, last_polled=now - timedelta(hours=2)),
            DeploymentState(name="watchdog", paused=True, last_polled=None),
        ],
        now,
    )
    assert len(problems) == 2
    assert "watchdog is paused" in problems[0]
    assert "nothing polls them" in problems[1]
    assert (
        "fees (never polled)" in problems[1] and "report (last polled 120 min ago)" in problems[1]
    )
    assert "collect" not in problems[1]


@flow(name="fees")
def fees_stand_in() -> None:
    pass


def test_status_against_a_real_server_units_and_polling(
    tmp_path: Path, prefect_harness: None
) -> None:
    plan = plan_for(tmp_path)
    # Installed (written) but not enabled: no `default.target.wants/` link yet.
    assert install(plan, systemd=False) == 0
    deployment_id = fees_stand_in.to_deployment(name="fees", tags=["hiveops"]).apply()
    facts, problems = service_report(plan.unit_dir, plan.target, user=True, systemd=False)
    assert f"unit {SERVER_UNIT}: installed, not enabled" in facts
    assert any(f"unit {SCHEDULER_UNIT} is installed but not enabled" in p for p in problems)
    assert any("nothing polls them" in p and "fees (never polled)" in p for p in problems)
    from hiveops.configcheck import scheduling_problems

    # `hiveops config check` says the same (it asks the server PREFECT_API_URL names).
    assert any("fees (never polled)" in p for p in scheduling_problems())

    # What `systemctl --user enable` makes, and what serve's runner does every few seconds.
    wants = plan.unit_dir / "default.target.wants"
    wants.mkdir()
    for name in (SERVER_UNIT, SCHEDULER_UNIT):
        (wants / name).symlink_to(plan.unit_dir / name)
    with get_client(sync_client=True) as client:
        # every hiveops deployment on this (session-wide) server, as one scheduler would
        served = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["hiveops"]))
        )
        client.get_scheduled_flow_runs_for_deployments([d.id for d in served])
    # the server records the poll in a background task, a moment later
    deadline = time.monotonic() + 30
    while True:
        facts, problems = service_report(plan.unit_dir, plan.target, user=True, systemd=False)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert f"unit {SERVER_UNIT}: installed, enabled" in facts
    assert problems == []

    with get_client(sync_client=True) as client:
        client.pause_deployment(deployment_id)
    _, problems = service_report(plan.unit_dir, plan.target, user=True, systemd=False)
    assert any("fees is paused" in p for p in problems)
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)
