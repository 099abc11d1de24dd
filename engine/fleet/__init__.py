"""Fleet coordination (issue #6): membership, health tiers, assistance, contribution, fee intel.

Pure functions over models.fleet and polars frames; flows/fleet.py fetches, calls them and stores
every health row, assistance action, outcome and contribution.
"""

from engine.fleet.assist import AssistanceLedger, assistance_id, ledger_from_rows, plan_assistance
from engine.fleet.contribution import AssistMove, FleetForward, measure_contribution
from engine.fleet.health import fleet_channel_scids, score_fleet, tier_for
from engine.fleet.intel import merge_fee_intelligence
from engine.fleet.membership import resolve_members
from engine.fleet.outcomes import close_assistance, outcome_of_not_possible

__all__ = [
    "AssistMove",
    "AssistanceLedger",
    "FleetForward",
    "assistance_id",
    "close_assistance",
    "fleet_channel_scids",
    "ledger_from_rows",
    "measure_contribution",
    "merge_fee_intelligence",
    "outcome_of_not_possible",
    "plan_assistance",
    "resolve_members",
    "score_fleet",
    "tier_for",
]
