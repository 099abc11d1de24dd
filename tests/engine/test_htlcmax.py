"""max-HTLC decisions on constructed channels (engine.htlcmax)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from engine.htlcmax import decide_htlcmax, target_htlcmax_msat
from models.htlcmax import HtlcmaxChannel, HtlcmaxReason
from models.settings import HtlcmaxConfig

NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
SAT = 1_000
CONFIG = HtlcmaxConfig()


def chan(local_sat: int, *, capacity_sat: int = 1_000_000, **kw: object) -> HtlcmaxChannel:
    fields: dict[str, object] = {
        "scid": "1x1x0",
        "peer_id": "03" + "aa" * 32,
        "is_fleet": False,
        "usable": True,
        "capacity_msat": capacity_sat * SAT,
        "local_msat": local_sat * SAT,
        "spendable_msat": local_sat * SAT,
        "posted_htlcmax_msat": capacity_sat * SAT * 99 // 100,
    }
    fields.update(kw)
    return HtlcmaxChannel.model_validate(fields)


def one(channel: HtlcmaxChannel, config: HtlcmaxConfig = CONFIG):
    [decision] = decide_htlcmax([channel], config, NOW)
    return decision


def test_a_depleted_channel_posts_a_rung_at_or_below_what_it_can_send() -> None:
    d = one(chan(200_000))
    assert d.apply and d.reason is HtlcmaxReason.FITS_SPENDABLE
    assert d.new_htlcmax_msat <= 200_000 * SAT
    assert d.new_htlcmax_msat > 200_000 * SAT / 2**0.5  # the highest rung under it
    assert "200000 sat spendable" in d.detail


def test_an_empty_channel_posts_the_floor_and_a_full_one_its_capacity() -> None:
    empty = one(chan(0))
    assert empty.new_htlcmax_msat == 1_000_000 * SAT // 64
    full = one(chan(700_000, posted_htlcmax_msat=100_000 * SAT))
    assert full.apply and full.reason is HtlcmaxReason.FREE
    assert full.new_htlcmax_msat == 1_000_000 * SAT


def test_the_ladder_is_the_hysteresis() -> None:
    posted, _ = target_htlcmax_msat(chan(200_000), CONFIG)
    # the balance moves a little either way: the same rung, nothing to do
    for local in (180_000, 190_000, 210_000, 240_000):
        d = one(chan(local, posted_htlcmax_msat=posted))
        assert not d.apply and d.reason is HtlcmaxReason.UNCHANGED, local
    # a refill past the next rung raises it at once (the channel can carry more again)
    raised = one(chan(300_000, posted_htlcmax_msat=posted))
    assert raised.apply and raised.new_htlcmax_msat > posted


def test_a_channel_at_the_nodes_default_with_plenty_is_left_alone() -> None:
    d = one(chan(800_000))
    assert not d.apply and d.reason is HtlcmaxReason.UNCHANGED


def test_changes_are_rate_limited_per_channel() -> None:
    recent = chan(200_000, last_change_at=NOW - timedelta(hours=1))
    d = one(recent)
    assert not d.apply and d.reason is HtlcmaxReason.RATE_LIMITED
    assert "changed 1.0 h ago" in d.detail
    later = chan(200_000, last_change_at=NOW - timedelta(hours=5))
    assert one(later).apply


def test_fleet_channels_are_never_narrowed_and_passive_ones_never_touched() -> None:
    fleet = one(chan(10_000, is_fleet=True))
    assert not fleet.apply and fleet.reason is HtlcmaxReason.FLEET_CHANNEL
    narrowed = one(chan(10_000, is_fleet=True, posted_htlcmax_msat=50_000 * SAT))
    assert narrowed.apply and narrowed.new_htlcmax_msat == 1_000_000 * SAT  # reopened
    passive = one(chan(10_000, passive=True))
    assert not passive.apply and passive.reason is HtlcmaxReason.PASSIVE_POLICY
    offline = one(chan(10_000, usable=False))
    assert not offline.apply and offline.reason is HtlcmaxReason.INACTIVE


def test_without_spendable_the_reserve_is_taken_off_the_local_balance() -> None:
    d = one(chan(200_000, spendable_msat=None))
    assert d.spendable_msat == 190_000 * SAT


def test_a_floor_above_the_free_share_is_refused_with_both_names() -> None:
    with pytest.raises(ValidationError, match=r"floor_share=0\.6 must be below free_share=0\.5"):
        HtlcmaxConfig(floor_share=0.6)


def test_a_channel_a_pull_is_refilling_is_judged_as_refilled() -> None:
    narrow, _ = target_htlcmax_msat(chan(50_000), CONFIG)
    now_narrow = chan(50_000, posted_htlcmax_msat=narrow)
    [held] = decide_htlcmax([now_narrow], CONFIG, NOW)
    assert not held.apply
    [widened] = decide_htlcmax([now_narrow], CONFIG, NOW, incoming={"1x1x0": 400_000 * SAT})
    assert widened.apply and 450_000 * SAT / 2**0.5 < widened.new_htlcmax_msat <= 450_000 * SAT
    assert widened.spendable_msat == 450_000 * SAT
