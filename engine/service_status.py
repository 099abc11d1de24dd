"""Is anything running the loops? The audit's loop was "installed" for five days without a timer.

Pure: unit states and deployment states in, one sentence per problem out (with the fix).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from models.service import DeploymentState, UnitState

# Prefect's runner and workers poll every 10-15 s; its own NOT_READY mark comes after 60 s.
POLL_STALE_S = 90


def unit_problems(units: Iterable[UnitState], *, user: bool) -> list[str]:
    flag = " --user" if user else ""
    problems = []
    for u in units:
        if not u.installed:
            continue
        if not u.enabled:
            problems.append(
                f"unit {u.name} is installed but not enabled: it will not start at boot; run "
                f"`systemctl{flag} enable --now {u.name}`"
            )
        elif u.active is False:
            problems.append(
                f"unit {u.name} is enabled but not running; see `journalctl{flag} -u {u.name}` "
                f"and `systemctl{flag} restart {u.name}`"
            )
    return problems


def deployment_problems(deployments: Iterable[DeploymentState], now: datetime) -> list[str]:
    problems = []
    unpolled = []
    for d in deployments:
        if d.paused:
            problems.append(
                f"deployment {d.name} is paused (a stopped `hiveops serve` pauses what it served): "
                f"start the scheduler again, or `prefect deployment resume {d.name}/{d.name}`"
            )
            continue
        age_s = (now - d.last_polled).total_seconds() if d.last_polled else None
        if age_s is None or age_s > POLL_STALE_S:
            seen = "never polled" if age_s is None else f"last polled {age_s / 60:.0f} min ago"
            unpolled.append(f"{d.name} ({seen})")
    if unpolled:
        problems.append(
            f"deployments exist but nothing polls them, so no run will start: "
            f"{', '.join(unpolled)}; start `hiveops serve` (or `prefect worker start --pool "
            f"hiveops` for work-pool deployments), or install it as a service: "
            f"`hiveops service install --user`"
        )
    return problems
