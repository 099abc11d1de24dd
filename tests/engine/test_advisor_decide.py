"""Advisor decisions: modes inside limits, rejection memory with a growing cooldown, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from engine.advisor.decide import (
    DecideContext,
    build_memory,
    cooldown_s,
    decide,
    rejection_alerts,
    score_penalties,
)
from engine.advisor.predict import fit_calibration
from models.advisor import (
    AdvisorConfig,
    DecisionMode,
    DecisionState,
    Opportunity,
    OpportunityType,
    OwnerLoop,
)

NOW = datetime(2026, 2, 1, tzinfo=UTC)
NODE = "02" + "a" * 64
PEER = "03" + "b" * 64
CONFIG = AdvisorConfig()
CALIBRATIONS = fit_calibration(pl.DataFrame(), CONFIG)


def opportunity(
    kind: OpportunityType = OpportunityType.CHANNEL_OPEN,
    target: str = PEER,
    raw_msat: int = 10_000_000,
    size: float = 2_000_000,
) -> Opportunity:
    owner = {OpportunityType.FEE: OwnerLoop.FEES, OpportunityType.REBALANCE: OwnerLoop.REBALANCE}
    return Opportunity(
        opportunity_type=kind,
        node_id=NODE,
        target=target,
        action="fundchannel",
        action_params={"peer_id": target},
        snapshot_metrics={"channels": 40},
        raw_estimate_msat=raw_msat,
        estimate_reason="test economics",
        size=size,
        owner_loop=owner.get(kind, OwnerLoop.ADVISOR),
    )


def rejections(*answered: tuple[str, datetime, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"opportunity_type": "channel_open", "target": t, "answered_at": at, "answer_reason": r}
            for t, at, r in answered
        ],
        schema={
            "opportunity_type": pl.String,
            "target": pl.String,
            "answered_at": pl.Datetime("us", "UTC"),
            "answer_reason": pl.String,
        },
    )


def run(opps: list[Opportunity], ctx: DecideContext, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return decide(opps, ctx, CONFIG, now, "run-1")


def test_cooldown_grows_with_each_rejection_up_to_the_cap() -> None:
    config = AdvisorConfig(cooldown_base_s=3600, cooldown_growth=2.0, cooldown_max_s=5 * 3600)
    assert [cooldown_s(n, config) for n in range(5)] == [0, 3600, 7200, 14400, 18000]


def test_rejected_open_is_not_reproposed_during_its_cooldown() -> None:
    memory = build_memory(rejections((PEER, NOW - timedelta(hours=2), "peer unreliable")), CONFIG)
    decisions, skipped = run([opportunity()], DecideContext(CALIBRATIONS, memory))
    assert decisions == []
    assert skipped[0].target == PEER and "cooldown until" in skipped[0].reason


def test_rejected_open_returns_after_cooldown_with_its_rejections_counted() -> None:
    memory = build_memory(rejections((PEER, NOW - timedelta(hours=25), "not now")), CONFIG)
    decisions, _ = run([opportunity()], DecideContext(CALIBRATIONS, memory))
    assert [d.target for d in decisions] == [PEER]
    assert decisions[0].prior_rejections == 1


def test_second_rejection_doubles_the_cooldown() -> None:
    memory = build_memory(
        rejections(
            (PEER, NOW - timedelta(hours=60), "no"),
            (PEER, NOW - timedelta(hours=30), "still no"),
        ),
        CONFIG,
    )
    entry = memory[(OpportunityType.CHANNEL_OPEN, PEER)]
    assert entry.cooldown_until == NOW - timedelta(hours=30) + timedelta(hours=48)
    assert run([opportunity()], DecideContext(CALIBRATIONS, memory))[0] == []


def test_rejection_reasons_about_cost_penalise_every_open() -> None:
    other = "03" + "c" * 64
    memory = build_memory(rejections((PEER, NOW, "on-chain cost too high")), CONFIG)
    per_target, type_penalty = score_penalties(memory, OpportunityType.CHANNEL_OPEN, CONFIG)
    assert per_target == {PEER: CONFIG.rejection_penalty}
    assert type_penalty == CONFIG.rejection_penalty
    memory = build_memory(rejections((other, NOW, "I do not know this peer")), CONFIG)
    assert score_penalties(memory, OpportunityType.CHANNEL_OPEN, CONFIG)[1] == 1.0


def test_opens_always_wait_for_approval_with_an_expiry() -> None:
    decisions, _ = run([opportunity()], DecideContext(CALIBRATIONS))
    d = decisions[0]
    assert (d.mode, d.state) == (DecisionMode.APPROVAL, DecisionState.PENDING_APPROVAL)
    assert d.expires_at == NOW + timedelta(seconds=CONFIG.approval_expiry_s)
    assert d.snapshot_metrics and d.predicted_benefit_msat == 5_000_000  # prior factor 0.5


def test_small_fee_move_is_auto_and_a_large_one_needs_approval() -> None:
    small = opportunity(OpportunityType.FEE, "1x1x0", size=10)
    large = opportunity(OpportunityType.FEE, "2x2x0", size=80)
    decisions, _ = run([small, large], DecideContext(CALIBRATIONS))
    assert [(d.target, d.mode, d.state, d.owner_loop) for d in decisions] == [
        ("1x1x0", DecisionMode.AUTO, DecisionState.AUTO_APPLIED, OwnerLoop.FEES),
        ("2x2x0", DecisionMode.APPROVAL, DecisionState.PENDING_APPROVAL, OwnerLoop.FEES),
    ]


def test_rebalance_over_the_auto_limit_needs_approval() -> None:
    big = opportunity(OpportunityType.REBALANCE, "3x3x0", size=CONFIG.auto_max_rebalance_sat + 1)
    decisions, _ = run([big], DecideContext(CALIBRATIONS))
    assert decisions[0].mode is DecisionMode.APPROVAL


def test_below_the_bar_is_recorded_as_proposed_with_its_reason() -> None:
    decisions, _ = run(
        [opportunity(OpportunityType.FEE, "1x1x0", raw_msat=0, size=10)],
        DecideContext(CALIBRATIONS),
    )
    d = decisions[0]
    assert d.state is DecisionState.PROPOSED and d.predicted_benefit_msat == 0
    assert d.benefit_reason.startswith("0: ")


def test_a_target_with_a_live_decision_is_not_proposed_twice() -> None:
    live = frozenset({(OpportunityType.CHANNEL_OPEN, PEER)})
    decisions, skipped = run(
        [opportunity(), opportunity()], DecideContext(CALIBRATIONS, open_keys=live)
    )
    assert decisions == [] and len(skipped) == 2
    decisions, skipped = run([opportunity(), opportunity()], DecideContext(CALIBRATIONS))
    assert len(decisions) == 1 and len(skipped) == 1


def test_repeated_rejections_raise_one_alert_per_new_rejection() -> None:
    config = AdvisorConfig(rejection_alert_count=2)
    memory = build_memory(
        rejections((PEER, NOW - timedelta(days=3), "no"), (PEER, NOW, "no again")), config
    )
    empty = pl.DataFrame(schema={"opportunity_type": pl.String, "state": pl.String})
    alerts = rejection_alerts(memory, empty, frozenset(), config)
    assert [a.kind for a in alerts] == ["advisor_repeated_rejections"]
    assert "rejected 2 times" in alerts[0].message
    assert rejection_alerts(memory, empty, frozenset({alerts[0].key}), config) == []


def test_a_mostly_rejected_type_raises_a_rate_alert() -> None:
    answers = pl.DataFrame(
        {"opportunity_type": ["channel_open"] * 5, "state": ["rejected"] * 4 + ["approved"]}
    )
    alerts = rejection_alerts({}, answers, frozenset(), AdvisorConfig(rejection_alert_rate=0.8))
    assert [a.kind for a in alerts] == ["advisor_rejection_rate"]
    assert rejection_alerts({}, answers, frozenset(), AdvisorConfig(rejection_alert_rate=0.9)) == []
