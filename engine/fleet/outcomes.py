"""Closing assistance actions with what they did to the member (pure).

Every action ends in exactly one outcome row: `helped`/`partial` with the liquidity moved and
the fee paid, `no_longer_needed` when the channel recovered before anything ran, or
`could_not_help` with the reason (every attempt failed, only dry runs, no attempt within
`fleet.assist_timeout_s`, the advisor rejected the proposal, no channel within
`fleet.proposal_ttl_s`). The member's health at request time and now travel with it, so the
question "did assistance lift nexus-03 out of critical?" is one query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from models.fleet import (
    Assistance,
    AssistanceAttempt,
    AssistanceKind,
    AssistanceOutcome,
    AssistanceResult,
    AssistanceState,
    FleetConfig,
    MemberHealth,
    MemberState,
)

ACTIVE_ATTEMPT_STATES = frozenset({"reserved", "running"})
FULL_SHARE = 0.9  # a pull that moved 90 % of its amount helped in full


def _outcome(
    row: Assistance,
    result: AssistanceResult,
    detail: str,
    now: datetime,
    health: MemberHealth | None,
    attempts: Sequence[AssistanceAttempt] = (),
) -> AssistanceOutcome:
    return AssistanceOutcome(
        assistance_id=row.assistance_id,
        node_id=row.node_id,
        helper_node_id=row.helper_node_id,
        kind=row.kind,
        closed_at=now,
        result=result,
        detail=detail,
        attempts=len(attempts),
        attempts_succeeded=sum(1 for a in attempts if a.state == "succeeded"),
        moved_msat=sum(a.moved_msat for a in attempts),
        fee_msat=sum(a.fee_msat or 0 for a in attempts),
        health_before=row.health_before,
        health_after=health.health_score if health else None,
        tier_before=row.tier_before,
        tier_after=health.tier if health else None,
    )


def outcome_of_not_possible(
    row: Assistance, health: MemberHealth | None, now: datetime
) -> AssistanceOutcome:
    """A `not_possible` row is its own outcome: written in the same cycle."""
    return _outcome(row, AssistanceResult.COULD_NOT_HELP, row.reason, now, health)


def _close_pull(
    row: Assistance,
    attempts: Sequence[AssistanceAttempt],
    state: MemberState | None,
    health: MemberHealth | None,
    config: FleetConfig,
    now: datetime,
) -> AssistanceOutcome | None:
    if any(a.state in ACTIVE_ATTEMPT_STATES for a in attempts):
        return None
    moved = sum(a.moved_msat for a in attempts)
    timed_out = now - row.requested_at >= timedelta(seconds=config.assist_timeout_s)
    amount_sat, moved_sat = row.amount_msat // 1000, moved // 1000
    if moved >= FULL_SHARE * row.amount_msat:
        return _outcome(
            row,
            AssistanceResult.HELPED,
            f"moved {moved_sat} of {amount_sat} sat into {row.dest_scid}",
            now,
            health,
            attempts,
        )
    if not timed_out:
        if not attempts and state is not None:
            dest = next((c for c in state.channels if c.scid == row.dest_scid), None)
            gone = dest is None or not dest.active
            recovered = gone or (
                dest.local_share >= FULL_SHARE * config.assist_dest_target_share  # type: ignore[union-attr]
            )
            if recovered:
                why = "closed or inactive" if gone else "reached its target share"
                return _outcome(
                    row,
                    AssistanceResult.NO_LONGER_NEEDED,
                    f"{row.dest_scid} {why} before any attempt",
                    now,
                    health,
                )
        return None
    hours = config.assist_timeout_s / 3600
    if moved > 0:
        return _outcome(
            row,
            AssistanceResult.PARTIAL,
            f"moved {moved_sat} of {amount_sat} sat into {row.dest_scid} within {hours:.0f} h",
            now,
            health,
            attempts,
        )
    if not attempts and row.rebalance_skip:
        detail = (
            f"could not help: no rebalance attempt within {hours:.0f} h; the rebalance loop "
            f"skipped {row.dest_scid}: {row.rebalance_skip}"
        )
    elif not attempts:
        detail = (
            f"could not help: no rebalance attempt within {hours:.0f} h of the request (is the "
            f"rebalance loop running and reading fleet.open_liquidity_requests?)"
        )
    elif all(a.state == "dry_run" for a in attempts):
        detail = f"could not help: dry run, {len(attempts)} attempt(s) recorded, nothing moved"
    else:
        reasons = sorted({a.failure_reason or a.state for a in attempts})
        detail = f"could not help: {len(attempts)} attempt(s) moved nothing: " + "; ".join(reasons)
    return _outcome(row, AssistanceResult.COULD_NOT_HELP, detail, now, health, attempts)


def _close_proposal(
    row: Assistance,
    state: MemberState | None,
    health: MemberHealth | None,
    decision_note: str | None,
    config: FleetConfig,
    now: datetime,
) -> AssistanceOutcome | None:
    if state is not None and row.helper_node_id is not None:
        opened = [
            c
            for c in state.channels
            if c.peer_id == row.helper_node_id
            and c.first_seen_at is not None
            and c.first_seen_at >= row.requested_at
        ]
        if opened:
            return _outcome(
                row,
                AssistanceResult.HELPED,
                f"channel {opened[0].scid} of {opened[0].capacity_msat // 1000} sat opened",
                now,
                health,
            )
    if row.state is AssistanceState.REJECTED:
        note = f": {decision_note}" if decision_note else ""
        return _outcome(
            row,
            AssistanceResult.COULD_NOT_HELP,
            f"could not help: advisor rejected{note}",
            now,
            health,
        )
    if now - row.requested_at >= timedelta(seconds=config.proposal_ttl_s):
        hours = config.proposal_ttl_s / 3600
        waiting = "approved but" if row.state is AssistanceState.ACCEPTED else "not decided and"
        return _outcome(
            row,
            AssistanceResult.COULD_NOT_HELP,
            f"could not help: proposal {waiting} no channel opened within {hours:.0f} h",
            now,
            health,
        )
    return None


def close_assistance(
    rows: Sequence[Assistance],
    attempts: Sequence[AssistanceAttempt],
    states: Mapping[str, MemberState],
    healths: Mapping[str, MemberHealth],
    decision_notes: Mapping[str, str | None],
    config: FleetConfig,
    now: datetime,
) -> list[AssistanceOutcome]:
    """Outcomes for the rows (open, accepted, rejected) that can be closed now."""
    by_row: dict[str, list[AssistanceAttempt]] = {}
    for attempt in attempts:
        by_row.setdefault(attempt.assistance_id, []).append(attempt)
    outcomes = []
    for row in rows:
        state, health = states.get(row.node_id), healths.get(row.node_id)
        if row.kind is AssistanceKind.LIQUIDITY_PULL:
            done = _close_pull(row, by_row.get(row.assistance_id, []), state, health, config, now)
        else:
            note = decision_notes.get(row.assistance_id)
            done = _close_proposal(row, state, health, note, config, now)
        if done is not None:
            outcomes.append(done)
    return outcomes
