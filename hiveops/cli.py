"""The `hiveops` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Without PREFECT_API_URL each command starts a temporary Prefect server. Its first start in a new
# PREFECT_HOME creates the database (all migrations), which on a busy 2-core machine took longer
# than Prefect's 20 s default wait and failed a newcomer's first `hiveops demo`.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

LOOP_FLOWS = {
    "collect": "flows.collect:collect",
    "fees": "flows.fees:fees",
    "rebalance": "flows.rebalance:rebalance",
    "outcomes": "flows.outcomes:outcomes",
    "fleet": "flows.fleet:fleet",
    "report": "flows.report:report",
    "advisor": "flows.advisor:advisor",
    "watchdog": "flows.watchdog:watchdog",
}


# Commands on the operator's read path build only their own parser: the full one imports
# prefect (about 1 s), and `hiveops sql "select 1"` has 0.3 s.
READ_COMMANDS = ("sql", "warehouse")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _read_parser() if argv[:1] and argv[0] in READ_COMMANDS else _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except Exception as exc:
        if isinstance(exc, _operator_errors()):
            print(f"hiveops: {exc}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        return 130


def _operator_errors() -> tuple[type[Exception], ...]:
    """Errors whose message tells the operator the fix; a module not imported raised none."""
    found: list[type[Exception]] = [FileNotFoundError]
    for module, name in (("models.settings", "ConfigError"), ("warehouse.db", "WarehouseError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def _read_parser() -> argparse.ArgumentParser:
    from hiveops import sqlcli, warehousecli

    p = argparse.ArgumentParser(prog="hiveops", description=__doc__)
    sub = p.add_subparsers(dest="command")
    sqlcli.add_parser(sub)
    warehousecli.add_parser(sub)
    return p


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hiveops", description=__doc__)
    sub = p.add_subparsers(dest="command")

    demo = sub.add_parser("demo", help="run the simulated audit fleet for N days, every loop")
    demo.add_argument("--days", type=int, default=21)
    demo.add_argument("--workdir", type=Path, default=Path("demo-work"))
    demo.add_argument("--scenario", default="audit")
    demo.add_argument(
        "--rest-members",
        type=int,
        default=1,
        help="how many members to reach over clnrest (HTTPS + rune) instead of their socket",
    )
    demo.set_defaults(handler=_demo)

    run = sub.add_parser("run", help="run one loop once as a Prefect flow run")
    run.add_argument("loop", choices=sorted(LOOP_FLOWS))
    run.add_argument("--config", type=Path)
    run.add_argument("--now", type=float, help="unix time to use as now (simulated clocks)")
    run.set_defaults(handler=_run)

    from hiveops import alerts as alerts_cli
    from hiveops import serve as serve_cli

    serve = sub.add_parser(
        "serve", help="schedule and run every loop (starts a local Prefect server if none is set)"
    )
    serve_cli.add_arguments(serve)
    serve.set_defaults(handler=serve_cli.run_from_args)

    alerts = sub.add_parser(
        "alerts", help="notify Telegram/Slack/Discord/e-mail/ntfy/webhooks of findings and failures"
    )
    alerts_cli.add_arguments(alerts)
    alerts.set_defaults(handler=alerts_cli.run_from_args)

    from hiveops import schedules as schedules_cli
    from hiveops import service as service_cli

    schedules = sub.add_parser(
        "schedules", help="each loop's interval or cron schedule; apply it to deployed loops"
    )
    schedules_cli.add_arguments(schedules)
    schedules.set_defaults(handler=schedules_cli.run_from_args)

    service = sub.add_parser(
        "service", help="systemd units for the Prefect server and the scheduler; are they running?"
    )
    service_cli.add_arguments(service)
    service.set_defaults(handler=service_cli.run_from_args)

    from hiveops import sqlcli, warehousecli

    sqlcli.add_parser(sub)
    warehousecli.add_parser(sub)

    config = sub.add_parser("config", help="configuration tools")
    csub = config.add_subparsers(dest="config_command")
    check = csub.add_parser("check", help="validate the config and warn about risky values")
    check.add_argument("--config", type=Path)
    check.set_defaults(handler=_config_check)

    from hiveops.approvecli import add_parser as add_approval_parser
    from hiveops.policycli import add_parser as add_policy_parser
    from hiveops.runecli import add_parser as add_rune_parser

    add_policy_parser(sub)
    add_approval_parser(sub)
    add_rune_parser(sub)

    sim = sub.add_parser("sim", help="the simulated CLN fleet")
    ssub = sim.add_subparsers(dest="sim_command")
    start = ssub.add_parser("start", help="serve a simulated fleet on unix sockets until stopped")
    start.add_argument("--scenario", default="audit", help="builtin name or a TOML/JSON file")
    start.add_argument("--workdir", type=Path, default=Path(".hiveops/sim"))
    start.add_argument("--write-config", type=Path)
    start.add_argument("--seed", type=int)
    start.add_argument("--speed", type=float, default=60.0, help="simulated s per wall s")
    start.add_argument("--manual", action="store_true", help="advance only via sim-control")
    start.add_argument(
        "--rest",
        nargs="*",
        metavar="MEMBER",
        help="serve clnrest on loopback HTTPS; the written config reaches these members (all "
        "when none is named) over REST with an act rune",
    )
    start.set_defaults(handler=_sim_start)
    return p


def _run(args: argparse.Namespace) -> int:
    from flows.common import LoopFailed

    module_name, _, attr = LOOP_FLOWS[args.loop].partition(":")
    module = __import__(module_name, fromlist=[attr])
    flow = getattr(module, attr)
    config = str(args.config) if args.config else None
    try:
        result = flow(config_path=config, now=args.now)
    except LoopFailed as exc:
        print(f"hiveops: {args.loop} failed: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from hiveops.configcheck import check_config

    return check_config(args.config)


def _sim_start(args: argparse.Namespace) -> int:
    from lnsim.simcli import sim_start

    return sim_start(
        scenario=args.scenario,
        workdir=args.workdir,
        write_config=args.write_config,
        seed=args.seed,
        speed=args.speed,
        manual=args.manual,
        rest=args.rest,
    )


def _demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the progress bar says enough
    # The ephemeral server's task-run recorder contends for SQLite with flow-run creation
    # (HTTP 503 + a 2 s client backoff on nearly every run); the demo keeps flow runs and
    # their states and skips task-run rows. `hiveops serve` keeps the recorder.
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    from hiveops.demo import run_demo

    return run_demo(
        days=args.days,
        workdir=args.workdir,
        scenario=args.scenario,
        rest_members=args.rest_members,
    )


if __name__ == "__main__":
    sys.exit(main())
