"""`hiveops schedules show|apply`: the `[orchestration]` schedules onto deployments made by
`prefect deploy --all` from prefect.yaml.

`hiveops serve` builds its deployments from the config, so it always follows it. prefect.yaml is
read by Prefect alone and carries fixed defaults; `apply` makes the deployed schedules match the
config (interval or cron + time zone), so the schedules, the staleness alerts and the watchdog
agree on what "late" means. An unchanged schedule is left alone (its future runs stay).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.orchestration import OrchestrationConfig, orchestration_of
from models.settings import load_settings


def client_schedule(config: OrchestrationConfig, loop: str) -> Any:
    """The loop's schedule as the API's schedule object (what a deployment stores)."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    schedule = config.schedule(loop)
    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    from datetime import timedelta

    assert schedule.interval_s is not None
    return IntervalSchedule(interval=timedelta(seconds=schedule.interval_s))


def _same(current: Any, wanted: Any) -> bool:
    keys = ("cron", "timezone", "interval")
    if type(current) is not type(wanted):
        return False
    if hasattr(wanted, "cron"):
        return all(getattr(current, k, None) == getattr(wanted, k, None) for k in keys[:2])
    return current.interval == wanted.interval


def apply_schedules(config: OrchestrationConfig) -> dict[str, str]:
    """{loop: unchanged | replaced | missing} for every configured loop's deployment `loop/loop`."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    done: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for loop in config.loops:
            try:
                deployment = client.read_deployment_by_name(f"{loop}/{loop}")
            except ObjectNotFound:
                done[loop] = "missing"
                continue
            wanted = client_schedule(config, loop)
            current = client.read_deployment_schedules(deployment.id)
            if len(current) == 1 and _same(current[0].schedule, wanted):
                done[loop] = "unchanged"
                continue
            for old in current:
                client.delete_deployment_schedule(deployment.id, old.id)
            client.create_deployment_schedules(deployment.id, [(wanted, True)])
            done[loop] = "replaced"
    return done


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schedules_command", required=True)
    for name, text in (
        ("show", "print each loop's schedule from the config"),
        ("apply", "set the deployed loops' schedules to the config's (after prefect deploy)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", type=Path)


def run_from_args(args: argparse.Namespace) -> int:
    config = orchestration_of(load_settings(args.config))
    if args.schedules_command == "show":
        for loop in config.loops:
            print(
                f"{loop:10} {config.schedule(loop).describe():40} stale after "
                f"{config.stale_after_s(loop)}s"
            )
        return 0
    from hiveops.serve import exit_on_sigterm, prefect_api

    with exit_on_sigterm(), prefect_api(announce=False):
        for loop, action in apply_schedules(config).items():
            hint = (
                "  (deploy it first: prefect --no-prompt deploy --all)"
                if action == "missing"
                else ""
            )
            print(f"{action:9} {loop}: {config.schedule(loop).describe()}{hint}")
    return 0
