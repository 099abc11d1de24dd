"""Fee decisions (issue #3): policies, the Thompson controller, outcomes and baselines.

Pure functions over models.fees and polars frames with declared schemas (engine.fees.frames);
the fees flow fetches, calls these, stores the decisions and applies them.
"""

from engine.fees.baselines import (
    BalanceProportional,
    ClnDefault,
    FeeStrategy,
    PriceTheory,
    PriceTheoryState,
    StaticMarketMedian,
    StrategyResult,
    ThompsonController,
)
from engine.fees.controller import decide_fee
from engine.fees.frames import (
    FEE_CHANGE_SCHEMA,
    FORWARD_SCHEMA,
    PEER_POLICY_SCHEMA,
    FrameContractError,
)
from engine.fees.inputs import build_fee_history, build_market_view, latest_change_at
from engine.fees.outcomes import estimate_fee_outcome, measure_fee_changes
from engine.fees.policy import fee_bounds, resolve_policy

__all__ = [
    "FEE_CHANGE_SCHEMA",
    "FORWARD_SCHEMA",
    "PEER_POLICY_SCHEMA",
    "BalanceProportional",
    "ClnDefault",
    "FeeStrategy",
    "FrameContractError",
    "PriceTheory",
    "PriceTheoryState",
    "StaticMarketMedian",
    "StrategyResult",
    "ThompsonController",
    "build_fee_history",
    "build_market_view",
    "decide_fee",
    "estimate_fee_outcome",
    "fee_bounds",
    "latest_change_at",
    "measure_fee_changes",
    "resolve_policy",
]
