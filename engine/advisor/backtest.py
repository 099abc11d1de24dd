"""The advisor's fee estimate scored on the fees loop's own changes.

On thin traffic the advisor's decisions rarely line up with a fee change that gets measured
(12 linked outcomes in three audit weeks), while the fees loop changes fees daily (44 measured).
Each of those changes is a natural experiment for the same question the calibration asks: how
does what `estimate_fee_move` says compare with what the outcome measured? So every applied
change is scored as the advisor would have scored it, from the warehouse as it stood just
before the change, and the measured ones centre the fee calibration's prior
(engine/advisor/predict.py says why a prior and not pooled evidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from engine.advisor.scan import ChannelInputs, estimate_fee_move
from engine.fees.inputs import build_market_view
from engine.fees.policy import resolve_policy
from models.advisor import AdvisorConfig


@dataclass(frozen=True)
class FeeChangeScore:
    change_id: str
    raw_estimate_msat: int
    estimate_reason: str


def score_fee_change(
    inputs: ChannelInputs, change: dict[str, Any], config: AdvisorConfig
) -> FeeChangeScore:
    """The advisor's raw estimate for `change` (a fee_changes row) from `inputs` read as of the
    change; 0 with the reason when there is nothing to score it on."""
    scid, changed_at = change["scid"], change["changed_at"]
    found = inputs.channels.filter(pl.col("scid") == scid)
    if found.is_empty():
        return _unscored(change, f"{scid} has no snapshot before the change at {changed_at}")
    row = found.row(0, named=True)
    if row["is_fleet"]:
        return _unscored(change, f"{scid} is a fleet channel: its fee is the fleet policy's")
    # The snapshot at the change's instant may already show a fee set outside the loop: the
    # change says what was replaced.
    row = {**row, "fee_ppm": int(change["old_fee_ppm"])}
    at: datetime = changed_at
    policy = resolve_policy(
        scid=scid, peer_id=row["peer_id"], is_fleet=False, policies=inputs.policies, now=at
    )
    market = build_market_view(row["peer_id"], inputs.peer_policies, now=at)
    estimate = estimate_fee_move(
        inputs, row, market, policy, int(change["new_fee_ppm"]), config.fee_horizon_s
    )
    return FeeChangeScore(change["change_id"], estimate.raw_msat, estimate.reason)


def _unscored(change: dict[str, Any], reason: str) -> FeeChangeScore:
    return FeeChangeScore(change["change_id"], 0, f"not scored: {reason}")
