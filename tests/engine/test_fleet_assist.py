"""Assistance planning and outcomes: bounded, idempotent, and always closed (pure)."""

from __future__ import annotations

from datetime import timedelta

from engine.fleet import (
    AssistanceLedger,
    close_assistance,
    ledger_from_rows,
    outcome_of_not_possible,
    plan_assistance,
    score_fleet,
)
from models.fleet import (
    AssistanceAttempt,
    AssistanceKind,
    AssistanceResult,
    AssistanceState,
    FleetConfig,
)
from tests.engine.test_fleet_health import NOW, SAT, audit_fleet, chan, member, node_id

CONFIG = FleetConfig()
NOTHING_ASKED = AssistanceLedger()


def plan(states=None, ledger=NOTHING_ASKED, config=CONFIG, now=NOW):  # type: ignore[no-untyped-def]
    states = states or audit_fleet()
    healths = score_fleet(states, config, now)
    return plan_assistance(states, healths, ledger, config, now), healths


def by_kind(plans):  # type: ignore[no-untyped-def]
    return {p.kind: p for p in plans}


def test_critical_nexus03_gets_a_pull_from_its_fleet_channel_into_its_depleted_channel() -> None:
    plans, _ = plan()
    pull = by_kind(plans)[AssistanceKind.LIQUIDITY_PULL]
    assert pull.state is AssistanceState.OPEN
    assert pull.node_id == node_id(3)  # the member runs sling itself
    assert pull.helper_node_id == node_id(2)  # nexus-02 is on the other end
    assert (pull.dest_scid, pull.source_scid) == ("19x1x0", "4x1x0")
    # to half of 500 k from 10 k local: 240 k, within the 300 k nexus-03 can spare above 30 %
    assert pull.amount_msat == 240_000 * SAT
    assert pull.max_fee_ppm == CONFIG.assist_max_fee_ppm
    assert {p.node_id for p in plans} == {node_id(3)}


def test_critical_member_short_of_peers_gets_a_channel_open_proposal_from_funded_member() -> None:
    plans, _ = plan()
    proposal = by_kind(plans)[AssistanceKind.CHANNEL_OPEN_PROPOSAL]
    assert proposal.helper_node_id == node_id(1)  # the member with on-chain funds
    assert proposal.amount_msat == CONFIG.open_channel_sat * SAT


def test_replanning_the_same_day_gives_the_same_ids_and_an_open_pull_blocks_a_new_one() -> None:
    first, _ = plan()
    again, _ = plan()
    assert [p.assistance_id for p in first] == [p.assistance_id for p in again]
    ledger = ledger_from_rows(first, NOW)
    later, _ = plan(ledger=ledger, now=NOW + timedelta(hours=8))
    assert later == []


def test_pull_amount_respects_the_fleet_fee_budget_and_says_so_when_exhausted() -> None:
    small = FleetConfig(assist_daily_fee_budget_sat=60, assist_max_fee_ppm=500)
    pull = by_kind(plan(config=small)[0])[AssistanceKind.LIQUIDITY_PULL]
    assert pull.amount_msat * pull.max_fee_ppm // 1_000_000 <= 60 * SAT
    assert pull.amount_msat == 120_000 * SAT
    spent = AssistanceLedger(fee_reserved_today_msat=2_000 * SAT)
    refused = by_kind(plan(ledger=spent)[0])[AssistanceKind.LIQUIDITY_PULL]
    assert refused.state is AssistanceState.NOT_POSSIBLE
    assert "fee budget exhausted" in refused.reason


def test_member_without_a_fleet_channel_gets_a_could_not_help_row() -> None:
    alone = member(3, [chan("19x1x0", 30, 500_000, 0.02)])
    states = [*audit_fleet()[:1], alone]
    pull = by_kind(plan(states)[0])[AssistanceKind.LIQUIDITY_PULL]
    assert pull.state is AssistanceState.NOT_POSSIBLE
    assert pull.reason.startswith("could not help:")
    assert "no connected channel with another fleet member" in pull.reason
    outcome = outcome_of_not_possible(pull, None, NOW)
    assert outcome.result is AssistanceResult.COULD_NOT_HELP and outcome.detail == pull.reason


def test_fleet_channel_drained_below_keep_share_cannot_source() -> None:
    states = audit_fleet()
    states[2] = member(3, [chan("4x1x0", 2, 3_000_000, 0.2), chan("19x1x0", 30, 500_000, 0.02)])
    pull = by_kind(plan(states)[0])[AssistanceKind.LIQUIDITY_PULL]
    assert pull.state is AssistanceState.NOT_POSSIBLE
    assert "to spare" in pull.reason


def test_healthy_members_get_nothing() -> None:
    plans, healths = plan(audit_fleet()[:2])
    assert not any(h.needs_help for h in healths)
    assert plans == []


def _open_pull():  # type: ignore[no-untyped-def]
    plans, healths = plan()
    return by_kind(plans)[AssistanceKind.LIQUIDITY_PULL], {h.node_id: h for h in healths}


def close(row, attempts=(), hours=1.0, states=None, notes=None):  # type: ignore[no-untyped-def]
    _, healths = _open_pull()
    states = states or {s.node_id: s for s in audit_fleet()}
    return close_assistance(
        [row],
        list(attempts),
        states,
        healths,
        notes or {},
        CONFIG,
        NOW + timedelta(hours=hours),
    )


def attempt(row, state: str, moved_sat: int = 0, reason: str | None = None):  # type: ignore[no-untyped-def]
    return AssistanceAttempt(
        assistance_id=row.assistance_id,
        state=state,
        moved_msat=moved_sat * SAT,
        fee_msat=moved_sat // 10 if moved_sat else None,
        failure_reason=reason,
    )


def test_pull_that_moved_its_amount_helped_with_health_before_and_after() -> None:
    row, _ = _open_pull()
    [outcome] = close(row, [attempt(row, "succeeded", 240_000)])
    assert outcome.result is AssistanceResult.HELPED
    assert outcome.moved_msat == 240_000 * SAT and outcome.attempts_succeeded == 1
    assert outcome.health_before is not None and outcome.health_after is not None


def test_pull_with_a_running_attempt_stays_open() -> None:
    row, _ = _open_pull()
    assert close(row, [attempt(row, "running")], hours=48) == []


def test_pull_with_no_attempt_is_closed_after_the_timeout_saying_why() -> None:
    row, _ = _open_pull()
    assert close(row, hours=2) == []
    [outcome] = close(row, hours=25)
    assert outcome.result is AssistanceResult.COULD_NOT_HELP
    assert "no rebalance attempt within 24 h" in outcome.detail


def test_pull_whose_attempts_all_failed_names_their_reasons() -> None:
    row, _ = _open_pull()
    attempts = [attempt(row, "failed", reason="NoCheapRoute"), attempt(row, "failed", reason="x")]
    [outcome] = close(row, attempts, hours=25)
    assert outcome.result is AssistanceResult.COULD_NOT_HELP
    assert "NoCheapRoute" in outcome.detail and outcome.attempts == 2


def test_partial_pull_is_partial_after_timeout() -> None:
    row, _ = _open_pull()
    assert close(row, [attempt(row, "succeeded", 100_000)], hours=2) == []
    [outcome] = close(row, [attempt(row, "succeeded", 100_000)], hours=25)
    assert outcome.result is AssistanceResult.PARTIAL


def test_proposal_closes_when_the_helper_opens_a_channel_or_the_advisor_rejects() -> None:
    plans, _ = plan()
    proposal = by_kind(plans)[AssistanceKind.CHANNEL_OPEN_PROPOSAL]
    states = {s.node_id: s for s in audit_fleet()}
    n3 = states[node_id(3)]
    opened = chan("99x1x0", 1, 2_000_000, 0.0, first_seen_at=NOW + timedelta(hours=5))
    states[node_id(3)] = n3.model_copy(update={"channels": (*n3.channels, opened)})
    [helped] = close(proposal, hours=6, states=states)
    assert helped.result is AssistanceResult.HELPED and "99x1x0" in helped.detail
    rejected = proposal.model_copy(update={"state": AssistanceState.REJECTED})
    [refused] = close(rejected, notes={proposal.assistance_id: "too small"})
    assert refused.detail == "could not help: advisor rejected: too small"
    [expired] = close(proposal, hours=CONFIG.proposal_ttl_s / 3600)
    assert "no channel opened" in expired.detail


def test_pull_without_attempt_names_the_rebalance_loops_skip_reason() -> None:
    row, _ = _open_pull()
    skipped = row.model_copy(update={"rebalance_skip": "budget_exhausted: worst-case fee 12 sat"})
    [outcome] = close(skipped, hours=25)
    assert outcome.result is AssistanceResult.COULD_NOT_HELP
    assert "budget_exhausted" in outcome.detail
