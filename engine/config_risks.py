"""Risky-but-valid configuration, found before it costs money (pure)."""

from __future__ import annotations

import statistics

from models.settings import Settings


def config_warnings(settings: Settings, channel_capacities_sat: list[int]) -> list[str]:
    """Warnings for values that validate but have hurt operators (see the 2026-02 audit)."""
    warnings: list[str] = []
    if not settings.nodes:
        warnings.append("no [[nodes]] configured: every loop will do nothing")
    if channel_capacities_sat:
        median_sat = int(statistics.median(channel_capacities_sat))
        chunk_sat = settings.rebalance.chunk_sat
        if chunk_sat > median_sat // 2 and not settings.rebalance.allow_large_chunks:
            warnings.append(
                f"rebalance.chunk_sat={chunk_sat} exceeds half the median channel "
                f"({median_sat // 2} sat of {median_sat}); large chunks fail to route (the "
                f"audit's 200k chunks failed 5/5): lower it or set "
                f"rebalance.allow_large_chunks=true"
            )
    if not settings.rebalance.ev_gate:
        warnings.append(
            "rebalance.ev_gate=false: pulls pay up to rebalance.max_fee_ppm whatever the "
            "channel earns (the audited setup, which spent more than it earned); set it to true"
        )
    fees = settings.fees
    if fees.fleet_fee_ppm != 0:
        warnings.append(
            f"fees.fleet_fee_ppm={fees.fleet_fee_ppm}: fleet channels normally carry 0 ppm so "
            f"members can move liquidity for free; set it to 0 unless you mean it"
        )
    if fees.min_fee_ppm > 0 and any(n.fleet_member for n in settings.nodes):
        warnings.append(
            f"fees.min_fee_ppm={fees.min_fee_ppm} applies to external channels only; fleet "
            f"channels stay at fees.fleet_fee_ppm={fees.fleet_fee_ppm} (the audit's floor "
            f"overrode fleet fees for two weeks; hiveops never does)"
        )
    if settings.rebalance.max_fee_ppm > fees.max_fee_ppm:
        warnings.append(
            f"rebalance.max_fee_ppm={settings.rebalance.max_fee_ppm} is above "
            f"fees.max_fee_ppm={fees.max_fee_ppm}: a rebalance may cost more than the moved "
            f"liquidity can ever earn back"
        )
    budget = settings.budget
    if budget.daily_budget_sat == 0:
        # engine.rebalance.budget: the day's budget is the smaller of the fixed amount and the
        # earnings share, so a zero fixed amount switches rebalancing off.
        warnings.append("budget.daily_budget_sat = 0: no rebalance can run")
    if not settings.dry_run and budget.daily_budget_sat > 100_000:
        warnings.append(
            f"budget.daily_budget_sat={budget.daily_budget_sat} with dry_run=false: up to "
            f"{budget.daily_budget_sat} sat a day can be spent on rebalancing fees"
        )
    for node in settings.nodes:
        if node.rest_url is not None:
            if node.ca_cert is not None and not node.ca_cert.exists():
                warnings.append(
                    f"nodes[{node.name}].ca_cert={node.ca_cert} does not exist (copy the "
                    f"node's clnrest ca.pem there)"
                )
            if node.rune is not None and node.rune_file is None:
                warnings.append(
                    f"nodes[{node.name}]: the rune is written in the config; move it to a "
                    f"rune_file (mode 0600) or ${node.rune_env}"
                )
        elif node.rpc_socket is not None and not node.rpc_socket.exists():
            warnings.append(
                f"nodes[{node.name}].rpc_socket={node.rpc_socket} does not exist (node down or "
                f"path wrong)"
            )
    return warnings
