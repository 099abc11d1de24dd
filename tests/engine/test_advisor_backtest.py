"""Scoring the advisor's fee estimate on a change the fees loop made (no warehouse, no node)."""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.advisor.backtest import score_fee_change
from engine.advisor.scan import estimate_fee_move
from engine.fees.inputs import build_market_view
from engine.fees.policy import resolve_policy
from tests.engine.test_advisor_scan import (
    CONFIG,
    NOW,
    PEER,
    channel,
    inputs,
    level,
    posted_for,
)


def change(old_ppm: int, new_ppm: int, scid: str = "1x1x0") -> dict[str, Any]:
    return {
        "change_id": "c1",
        "scid": scid,
        "changed_at": NOW,
        "old_fee_ppm": old_ppm,
        "new_fee_ppm": new_ppm,
    }


def test_a_change_is_scored_as_the_advisor_would_have_proposed_it() -> None:
    row = channel(fee_levels=[level(750, 96, 40), level(1_000, 96, 4)], **posted_for(48, 2))
    data = inputs([row])
    scored = score_fee_change(data, change(1_000, 750), CONFIG)
    policy = resolve_policy(scid="1x1x0", peer_id=PEER, is_fleet=False, policies=(), now=NOW)
    market = build_market_view(PEER, data.peer_policies, now=NOW)
    same = estimate_fee_move(data, row, market, policy, 750, CONFIG.fee_horizon_s)
    assert scored.raw_estimate_msat == same.raw_msat > 0
    assert scored.estimate_reason == same.reason
    # back up to a fee that sold nothing, from 750 ppm selling well: the estimate says it loses
    at_750 = channel(
        fee_ppm=750,
        fee_levels=[level(750, 96, 40), level(1_000, 96, 0)],
        **posted_for(48, 20, fee_ppm=750),
    )
    assert score_fee_change(inputs([at_750]), change(750, 1_000), CONFIG).raw_estimate_msat < 0


def test_the_replaced_fee_is_the_changes_not_the_snapshots() -> None:
    """A snapshot taken at the change's instant may already show another fee."""
    row = channel(fee_levels=[level(750, 96, 40), level(1_000, 96, 4)], **posted_for(48, 2))
    as_changed = score_fee_change(inputs([row]), change(1_000, 750), CONFIG)
    moved = score_fee_change(inputs([{**row, "fee_ppm": 900}]), change(1_000, 750), CONFIG)
    assert moved == as_changed


def test_unscorable_changes_get_zero_and_say_why() -> None:
    data = inputs([channel(), channel(scid="2x2x0", is_fleet=True)])
    missing = score_fee_change(data, change(1_000, 750, scid="9x9x0"), CONFIG)
    fleet = score_fee_change(data, change(1_000, 750, scid="2x2x0"), CONFIG)
    assert missing.raw_estimate_msat == fleet.raw_estimate_msat == 0
    assert missing.estimate_reason.startswith("not scored: 9x9x0 has no snapshot")
    assert "fleet channel" in fleet.estimate_reason


def test_a_peer_without_known_competitors_is_still_scored() -> None:
    row = channel(fee_levels=[level(750, 96, 40), level(1_000, 96, 4)], **posted_for(48, 2))
    alone = inputs([row], peer_policies=pl.DataFrame(schema=inputs([row]).peer_policies.schema))
    scored = score_fee_change(alone, change(1_000, 750), CONFIG)
    assert "no competitor fee known" in scored.estimate_reason
    assert scored.raw_estimate_msat != 0
