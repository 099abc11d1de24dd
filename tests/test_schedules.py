"""Each loop on an interval or a cron expression in a time zone: validated in the config, served
as such, applied to deployments made from prefect.yaml, and the staleness clock follows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from hiveops.schedules import apply_schedules
from hiveops.serve import build_deployments, load_loop_flows
from models.orchestration import OrchestrationConfig
from models.settings import ConfigError, load_settings


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text(text)
    return path


def test_cron_with_time_zone_is_validated_and_sets_the_staleness_window(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "[orchestration.schedules]\n"
        'report = { cron = "30 6 * * 1-5", timezone = "Europe/Berlin" }\n'
        "fees = { interval_s = 900 }\n",
    )
    config = load_settings(path).orchestration
    assert config.schedule("report").cron == "30 6 * * 1-5"
    assert config.interval_s("report") == 3 * 86_400  # Friday 06:30 to Monday 06:30
    assert config.stale_after_s("report") == 6 * 86_400
    assert config.interval_s("fees") == 900
    assert config.interval_s("collect") == 600  # not named: its default interval

    bad = {
        'report = { cron = "30 25 * * *" }': "not a cron expression Prefect accepts",
        'report = { cron = "0 6 * * *", timezone = "Europe/Atlantis" }': "not an IANA time zone",
        'report = { cron = "0 6 * * *", interval_s = 60 }': "exactly one of interval_s",
        "reprot = { interval_s = 60 }": "unknown loop(s) reprot",
        "fees = { interval_s = 2 }": "greater than or equal to 5",
    }
    for line, message in bad.items():
        path = config_file(tmp_path, f"[orchestration.schedules]\n{line}\n")
        with pytest.raises(ConfigError, match=r"orchestration\.schedules") as exc:
            load_settings(path)
        assert message in str(exc.value), (line, str(exc.value))


def test_serve_builds_cron_deployments_in_their_time_zone(tmp_path: Path) -> None:
    config = OrchestrationConfig(
        schedules={"report": {"cron": "0 6 * * *", "timezone": "America/New_York"}}
    )
    flows = load_loop_flows(["report", "collect"], strict=True)
    by_name = {d.name: d for d in build_deployments(flows, tmp_path / "h.toml", config)}
    report = by_name["report"].schedules[0].schedule
    assert (report.cron, report.timezone) == ("0 6 * * *", "America/New_York")
    assert by_name["collect"].schedules[0].schedule.interval.total_seconds() == 600


@flow(name="report")
def report_stand_in() -> None:
    pass


def test_apply_replaces_a_prefect_yaml_schedule_with_the_configs(prefect_harness: None) -> None:
    deployment_id = report_stand_in.to_deployment(name="report", interval=86_400).apply()
    config = OrchestrationConfig(
        loops=("report", "fleet"),
        schedules={"report": {"cron": "15 7 * * *", "timezone": "Asia/Tokyo"}},
    )
    assert apply_schedules(config) == {"report": "replaced", "fleet": "missing"}
    with get_client(sync_client=True) as client:
        (schedule,) = client.read_deployment_schedules(deployment_id)
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("15 7 * * *", "Asia/Tokyo")
    assert apply_schedules(config)["report"] == "unchanged"
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)
