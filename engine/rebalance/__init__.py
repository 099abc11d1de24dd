"""Rebalance decisions (issue #4): classification, EV gate, budget, breaker, planner, outcomes.

Pure functions over models.rebalance and polars forwards frames (engine.fees.frames schema);
the rebalance flow fetches, reconciles the budget, calls `plan_rebalances`, reserves, drives
sling and stores every proposal, skip, reservation and outcome.
"""

from engine.rebalance.breaker import (
    backoff_s,
    breaker_block,
    breaker_from_attempts,
    multi_channel_peers,
    ping_pong_reason,
    record_attempt,
    resume_channel,
)
from engine.rebalance.budget import (
    ONCHAIN_COST_SCHEMA,
    REBALANCE_FEE_SCHEMA,
    LedgerError,
    apply_reconcile,
    available_msat,
    build_ledger,
    daily_budget_msat,
    reconcile,
    release,
    reserve,
    settle,
)
from engine.rebalance.classify import classify_channels
from engine.rebalance.ev import (
    demand_capped_amount_msat,
    evaluate_pull,
    expected_demand_msat,
    expected_inbound_msat,
    size_pull_amount_msat,
)
from engine.rebalance.outcome import measure_rebalance_outcome
from engine.rebalance.planner import plan_rebalances

__all__ = [
    "ONCHAIN_COST_SCHEMA",
    "REBALANCE_FEE_SCHEMA",
    "LedgerError",
    "apply_reconcile",
    "available_msat",
    "backoff_s",
    "breaker_block",
    "breaker_from_attempts",
    "build_ledger",
    "classify_channels",
    "daily_budget_msat",
    "demand_capped_amount_msat",
    "evaluate_pull",
    "expected_demand_msat",
    "expected_inbound_msat",
    "measure_rebalance_outcome",
    "multi_channel_peers",
    "ping_pong_reason",
    "plan_rebalances",
    "reconcile",
    "record_attempt",
    "release",
    "reserve",
    "resume_channel",
    "settle",
    "size_pull_amount_msat",
]
