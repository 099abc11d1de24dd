"""`hiveops config check`: validate, then warn about risky values."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config_risks import config_warnings
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
    warnings = config_warnings(settings, capacities_sat)
    for w in warnings:
        print(f"warning: {w}", file=sys.stdout)
    if not capacities_sat:
        print("note: no channel data yet; run `hiveops run collect` to check chunk sizes")
    return 0


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
