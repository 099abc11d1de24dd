"""`hiveops config check`: validate, then warn about risky values."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config_risks import config_warnings
from engine.rebalance.policy import contradictions
from models.settings import ConfigError, NodeConfig, load_settings
from warehouse import db


def check_config(config: Path | None) -> int:
    settings = load_settings(config)
    capacities_sat: list[int] = []
    if settings.warehouse_path.exists():
        try:
            with db.reader(settings.warehouse_path, timeout_s=5) as con:
                rows = db.fetch_all(con, "common.external_channel_capacities")
                capacities_sat = [int(r["capacity_sat"]) for r in rows]
        except Exception as exc:  # a locked or older warehouse must not hide the other checks
            print(f"note: channel sizes not read from {settings.warehouse_path}: {exc}")
    print(
        f"config {settings.config_path}: valid; {len(settings.nodes)} node(s), "
        f"warehouse {settings.warehouse_path}, dry_run={settings.dry_run}"
    )
    for node in settings.nodes:
        print(f"  {node_line(node)}")
    warnings = config_warnings(settings, capacities_sat) + _policy_warnings(settings.warehouse_path)
    for w in warnings:
        print(f"warning: {w}", file=sys.stdout)
    if not capacities_sat:
        print("note: no channel data yet; run `hiveops run collect` to check chunk sizes")
    for problem in scheduling_problems():
        print(f"warning: {problem}")
    return 0


def scheduling_problems() -> list[str]:
    """Installed is not running: units not enabled, deployments nobody polls (the audit's five
    silent days). Asks the Prefect server only when PREFECT_API_URL names one; never starts one."""
    from hiveops.service import default_unit_dir, has_systemd, service_report

    systemd = has_systemd()
    problems: list[str] = []
    for user, target in ((True, "default.target"), (False, "multi-user.target")):
        _, found = service_report(
            default_unit_dir(user), target, user=user, systemd=systemd, check_prefect=False
        )
        problems += found
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        _, found = service_report(
            default_unit_dir(True), "default.target", user=True, systemd=False
        )
        problems += [p for p in found if not p.startswith("unit ")]
    return problems


def _policy_warnings(warehouse_path: Path) -> list[str]:
    """Rebalance policies that contradict an open fleet-assistance request (the planner
    honours the operator and skips the pull; the fleet loop would keep asking)."""
    if not warehouse_path.exists():
        return []
    from tasks.rebalance import read_policies

    try:
        with db.reader(warehouse_path, timeout_s=5) as con:
            policies = read_policies(con)
            if not policies:
                return []
            peers = {r["scid"]: r["peer_id"] for r in db.fetch_all(con, "rebalance.channel_peers")}
            requests = [
                (r["dest_scid"], r["source_scid"])
                for r in db.fetch_all(con, "fleet.open_liquidity_requests")
            ]
    except Exception as exc:  # an older or locked warehouse must not hide the other checks
        print(f"note: rebalance policies not checked against {warehouse_path}: {exc}")
        return []
    return contradictions(policies, peers, requests)


def node_line(node: NodeConfig) -> str:
    """How a node is reached; a rune is shown masked, never its text."""
    if node.rest_url is None:
        return f"{node.name}: unix socket {node.rpc_socket}"
    try:
        rune = f"rune {node.load_rune()} from {node.rune_source()}"
    except ConfigError as exc:
        rune = f"NO RUNE: {exc}"
    ca = f"ca_cert {node.ca_cert}" if node.ca_cert else "system CAs"
    return f"{node.name}: clnrest {node.rest_url}, {ca}, {rune}"
