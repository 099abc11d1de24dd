"""`hiveops service install|status`: the Prefect server and the scheduler as systemd units that
restart on failure, and a check that something really polls the deployments.

Two units: `hiveops-prefect-server` (`prefect server start`: API, UI, Prefect's scheduler and the
automations that deliver alerts) and `hiveops-scheduler` (`hiveops serve`, or a process worker
for `prefect deploy` deployments) pointed at it. Restart=always on both, so a crash or an
out-of-memory kill is a restart, not a silent stop; the watchdog's dead man's switch covers the
host itself. Without systemd (containers, macOS, this CI) install prints the units and the
commands instead of half-installing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.service_status import deployment_problems, unit_problems
from models.service import DeploymentState, UnitState
from models.settings import load_settings

SERVER_UNIT = "hiveops-prefect-server.service"
SCHEDULER_UNIT = "hiveops-scheduler.service"
UNITS = (SERVER_UNIT, SCHEDULER_UNIT)
DEFAULT_PORT = 4200


@dataclass(frozen=True)
class UnitPlan:
    """Where and how the units go: user or system manager, paths baked into ExecStart."""

    user: bool
    unit_dir: Path
    config_path: Path
    python: str
    port: int
    prefect_home: Path
    scheduler: str = "serve"  # serve | worker
    pool: str = "hiveops"
    run_as: str | None = None

    @property
    def target(self) -> str:
        return "default.target" if self.user else "multi-user.target"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def systemctl(self, *args: str) -> list[str]:
        return ["systemctl", *(["--user"] if self.user else []), *args]


def default_unit_dir(user: bool) -> Path:
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "systemd" / "user"
    return Path("/etc/systemd/system")


def has_systemd() -> bool:
    """systemd is PID 1 (its runtime dir exists) and systemctl is on PATH."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _env_line(name: str, value: str) -> str:
    return f'Environment="{name}={value}"'


def server_unit(plan: UnitPlan) -> str:
    lines = [
        "[Unit]",
        "Description=hiveops: Prefect server (API, UI, schedules, alert automations)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        *([f"User={plan.run_as}"] if plan.run_as and not plan.user else []),
        _env_line("PREFECT_HOME", str(plan.prefect_home)),
        # host and port through the environment: with --host/--port the UI points at :4200
        _env_line("PREFECT_SERVER_API_HOST", "127.0.0.1"),
        _env_line("PREFECT_SERVER_API_PORT", str(plan.port)),
        _env_line("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
        f"ExecStart={shlex.quote(plan.python)} -m prefect server start",
        "Restart=always",
        "RestartSec=5",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        f"WantedBy={plan.target}",
        "",
    ]
    return "\n".join(lines)


def scheduler_unit(plan: UnitPlan) -> str:
    python = shlex.quote(plan.python)
    config = shlex.quote(str(plan.config_path))
    if plan.scheduler == "worker":
        what = f"a Prefect process worker for pool {plan.pool}"
        exec_start = f"{python} -m prefect worker start --pool {shlex.quote(plan.pool)}"
    else:
        what = "hiveops serve (every loop on its schedule)"
        exec_start = f"{python} -m hiveops.cli serve --config {config}"
    wait = (
        f'{python} -c "from hiveops.serve import wait_healthy; '
        f"wait_healthy('{plan.api_url}', 300)\""
    )
    lines = [
        "[Unit]",
        f"Description=hiveops: scheduler, {what}",
        f"After={SERVER_UNIT}",
        f"Requires={SERVER_UNIT}",
        "",
        "[Service]",
        "Type=simple",
        *([f"User={plan.run_as}"] if plan.run_as and not plan.user else []),
        f"WorkingDirectory={plan.config_path.parent}",
        _env_line("PREFECT_API_URL", plan.api_url),
        _env_line("HIVEOPS_CONFIG", str(plan.config_path)),
        _env_line("HIVEOPS_HOME", str(plan.config_path.parent)),
        _env_line("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
        # the server may still be migrating its database after a reboot
        f"ExecStartPre={wait}",
        f"ExecStart={exec_start}",
        "Restart=always",
        "RestartSec=10",
        # SIGTERM: serve cancels in-flight runs and stops; give it time to do so
        "KillSignal=SIGTERM",
        "TimeoutStopSec=60",
        "",
        "[Install]",
        f"WantedBy={plan.target}",
        "",
    ]
    return "\n".join(lines)


def render_units(plan: UnitPlan) -> dict[str, str]:
    return {SERVER_UNIT: server_unit(plan), SCHEDULER_UNIT: scheduler_unit(plan)}


def _command_line(unit_text: str) -> str:
    """The unit's Environment= and ExecStart= as one shell line."""
    env, command = [], ""
    for line in unit_text.splitlines():
        if line.startswith("Environment="):
            env.append(shlex.quote(line.removeprefix("Environment=").strip('"')))
        elif line.startswith("ExecStart="):
            command = line.removeprefix("ExecStart=")
    return " ".join([*env, command])


def enable_commands(plan: UnitPlan) -> list[list[str]]:
    return [plan.systemctl("daemon-reload"), plan.systemctl("enable", "--now", *UNITS)]


def make_plan(args: argparse.Namespace) -> UnitPlan:
    settings = load_settings(args.config)
    assert settings.config_path is not None
    from prefect.settings import PREFECT_HOME

    user = bool(args.user)
    return UnitPlan(
        user=user,
        unit_dir=Path(args.unit_dir) if args.unit_dir else default_unit_dir(user),
        config_path=settings.config_path,
        python=sys.executable,
        port=args.port,
        prefect_home=Path(PREFECT_HOME.value()).expanduser().resolve(),
        scheduler=args.scheduler,
        pool=args.pool,
        run_as=None if user else getpass.getuser(),
    )


def install(plan: UnitPlan, *, systemd: bool, print_only: bool = False) -> int:
    """Write the units and enable them; without systemd, print them and what to run."""
    units = render_units(plan)
    commands = enable_commands(plan)
    if print_only or (not systemd and plan.unit_dir == default_unit_dir(plan.user)):
        for name, text in units.items():
            print(f"# {plan.unit_dir / name}\n{text}")
        print("systemd is not running on this machine: nothing was installed." if not systemd
              else "printed only (--print).")  # fmt: skip
        print(f"On a systemd host, write the units above to {plan.unit_dir}/ and run:")
        for command in commands:
            print(f"  {shlex.join(command)}")
        if plan.user:
            print(f"  loginctl enable-linger {getpass.getuser()}  # keep them running after logout")
        print("Without systemd, run both under your supervisor of choice (restart on exit):")
        for text in units.values():
            print(f"  {_command_line(text)}")
        return 0
    plan.unit_dir.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (plan.unit_dir / name).write_text(text)
        print(f"wrote {plan.unit_dir / name}")
    if not systemd:
        print("systemd is not running here; to enable them on a systemd host:")
        for command in commands:
            print(f"  {shlex.join(command)}")
        return 0
    for command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(f"hiveops: `{shlex.join(command)}` failed ({done.returncode})", file=sys.stderr)
            return 1
    return 0


def unit_states(unit_dir: Path, target: str, *, user: bool, systemd: bool) -> list[UnitState]:
    """Installed = the unit file exists; enabled = `systemctl is-enabled`, or without systemd
    the `<target>.wants/` link that `systemctl enable` makes; active only when systemd answers."""
    states = []
    for name in UNITS:
        installed = (unit_dir / name).exists()
        enabled = (unit_dir / f"{target}.wants" / name).exists()
        active: bool | None = None
        if systemd and installed:
            flag = ["--user"] if user else []
            ask = ["systemctl", *flag]
            enabled = _systemctl_says([*ask, "is-enabled", name], "enabled")
            active = _systemctl_says([*ask, "is-active", name], "active")
        states.append(UnitState(name=name, installed=installed, enabled=enabled, active=active))
    return states


def _systemctl_says(command: list[str], expected: str) -> bool:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.stdout.strip() == expected


def read_deployments(api_url: str | None = None) -> list[DeploymentState]:
    """The hiveops deployments (tag `hiveops`) on the configured Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["hiveops"]))
        )
    return [
        DeploymentState(
            name=d.name,
            paused=bool(d.paused),
            last_polled=d.last_polled,
            work_pool=d.work_pool_name,
        )
        for d in found
    ]


def service_report(
    unit_dir: Path, target: str, *, user: bool, systemd: bool, check_prefect: bool = True
) -> tuple[list[str], list[str]]:
    """(facts, problems): what is installed and polled, and what to fix."""
    facts, problems = [], []
    units = unit_states(unit_dir, target, user=user, systemd=systemd)
    for u in units:
        if u.installed:
            running = "" if u.active is None else (", running" if u.active else ", not running")
            facts.append(f"unit {u.name}: installed, {'enabled' if u.enabled else 'not enabled'}"
                         f"{running}")  # fmt: skip
        else:
            facts.append(f"unit {u.name}: not installed in {unit_dir}")
    problems += unit_problems(units, user=user)
    if check_prefect:
        from prefect.settings import PREFECT_API_URL

        api = PREFECT_API_URL.value()
        if not api:
            facts.append("PREFECT_API_URL is not set: no Prefect server to ask about deployments")
        else:
            try:
                deployments = read_deployments()
            except Exception as exc:
                problems.append(
                    f"the Prefect server at {api} does not answer ({type(exc).__name__}); start "
                    f"it (`systemctl{' --user' if user else ''} start {SERVER_UNIT}`)"
                )
            else:
                facts.append(f"Prefect {api}: {len(deployments)} hiveops deployment(s)")
                problems += deployment_problems(deployments, datetime.now(UTC))
    return facts, problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="service_command", required=True)
    install_p = sub.add_parser("install", help="write and enable systemd units (server, scheduler)")
    status_p = sub.add_parser("status", help="are the units enabled, is anything polling?")
    for p in (install_p, status_p):
        p.add_argument("--config", type=Path)
        p.add_argument("--user", action="store_true", help="user units (~/.config/systemd/user)")
        p.add_argument(
            "--unit-dir", type=Path, help="where the unit files are (default: systemd's)"
        )
    install_p.add_argument("--port", type=int, default=DEFAULT_PORT)
    install_p.add_argument("--scheduler", choices=["serve", "worker"], default="serve")
    install_p.add_argument("--pool", default="hiveops", help="work pool for --scheduler worker")
    install_p.add_argument("--print", action="store_true", help="print the units, write nothing")


def run_from_args(args: argparse.Namespace) -> int:
    systemd = has_systemd()
    if args.service_command == "install":
        return install(make_plan(args), systemd=systemd, print_only=args.print)
    user = bool(args.user)
    unit_dir = Path(args.unit_dir) if args.unit_dir else default_unit_dir(user)
    target = "default.target" if user else "multi-user.target"
    facts, problems = service_report(unit_dir, target, user=user, systemd=systemd)
    for line in facts:
        print(line)
    for line in problems:
        print(f"problem: {line}")
    if not systemd:
        print("note: systemd is not running here; `hiveops service install` prints the units")
    return 1 if problems else 0
