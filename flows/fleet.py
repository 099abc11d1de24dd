"""fleet: membership, member health and tiers, assistance and its outcomes, contribution, and
merged fee intelligence, once per run for the whole fleet."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, task

from engine.fleet import (
    close_assistance,
    ledger_from_rows,
    measure_contribution,
    outcome_of_not_possible,
    plan_assistance,
    score_fleet,
)
from flows.common import LoopFailed, current_run_id, loop_settings, resolve_now
from flows.hooks import LOOP_HOOKS
from models.fleet import (
    Assistance,
    AssistanceOutcome,
    AssistanceState,
    Contribution,
    FleetConfig,
    FleetMember,
    MemberHealth,
    MemberState,
)
from tasks.fleet import (
    ContributionInputs,
    PendingAssistance,
    load_assistance,
    load_contribution_inputs,
    load_member_states,
    record_assistance,
    record_contribution,
    record_health,
    refresh_members,
    update_fee_intelligence,
)
from tasks.ledger import FLEET_WIDE, heartbeat_finish, heartbeat_start, raise_alert

LOOP = "fleet"


@task(name="score-members")
def score_members(
    states: list[MemberState], member_ids: list[str], config: FleetConfig, now: datetime
) -> list[MemberHealth]:
    return score_fleet(states, config, now, member_ids)


@task(name="decide-assistance")
def decide_assistance(
    pending: PendingAssistance,
    states: list[MemberState],
    healths: list[MemberHealth],
    member_ids: list[str],
    config: FleetConfig,
    now: datetime,
) -> tuple[list[Assistance], list[AssistanceOutcome]]:
    """Close what can be closed, then plan this cycle's actions against what remains open."""
    waiting = [
        r
        for r in pending.rows
        if r.state in (AssistanceState.OPEN, AssistanceState.ACCEPTED, AssistanceState.REJECTED)
    ]
    outcomes = close_assistance(
        waiting,
        pending.attempts,
        {s.node_id: s for s in states},
        {h.node_id: h for h in healths},
        pending.notes,
        config,
        now,
    )
    closed = {o.assistance_id for o in outcomes}
    rows = [
        r.model_copy(update={"state": AssistanceState.CLOSED}) if r.assistance_id in closed else r
        for r in pending.rows
    ]
    plans = plan_assistance(states, healths, ledger_from_rows(rows, now), config, now, member_ids)
    by_member = {h.node_id: h for h in healths}
    outcomes += [
        outcome_of_not_possible(p, by_member.get(p.node_id), now)
        for p in plans
        if p.state is AssistanceState.NOT_POSSIBLE
    ]
    return plans, outcomes


@task(name="measure-contribution")
def decide_contribution(
    members: list[FleetMember], inputs: ContributionInputs, config: FleetConfig, now: datetime
) -> list[Contribution]:
    return measure_contribution(
        members,
        inputs.cycles,
        inputs.snapshots,
        inputs.sightings,
        inputs.forwards,
        inputs.moves,
        config,
        now,
    )


@flow(name="fleet", **LOOP_HOOKS)
def fleet(config_path: str | None = None, now: datetime | float | None = None) -> dict[str, Any]:
    settings = loop_settings(config_path)
    config: FleetConfig = getattr(settings, "fleet", None) or FleetConfig()
    at = resolve_now(now)
    run_id = current_run_id()
    wh = settings.warehouse_path
    names = [n.name for n in settings.nodes if n.fleet_member]
    for name in [*names, FLEET_WIDE]:
        heartbeat_start(wh, run_id, LOOP, name, at)

    members, problems = refresh_members(wh, settings.nodes, at)
    errors: dict[str, str] = dict(problems)
    member_ids = [m.node_id for m in members]
    states = load_member_states(wh, config.revenue_window_s, at)
    max_age = timedelta(seconds=config.snapshot_max_age_s)
    fresh = [s for s in states if s.taken_at is not None and at - s.taken_at <= max_age]
    for s in states:
        if s not in fresh:
            age = f"{(at - s.taken_at).total_seconds() / 3600:.1f} h old" if s.taken_at else "none"
            errors[s.name] = (
                f"fleet member {s.name}: latest snapshot {age} (limit "
                f"{config.snapshot_max_age_s // 3600} h); health not scored, it cannot help or "
                f"be helped until collect reaches it (is its node up?)"
            )
    healths = score_members(fresh, member_ids, config, at)
    written = dict.fromkeys(names, 0)
    for h in healths:
        written[h.name] += 1
    record_health(wh, run_id, healths)

    pending = load_assistance(wh, at)
    plans, outcomes = decide_assistance(pending, fresh, healths, member_ids, config, at)
    record_assistance(wh, run_id, plans, outcomes)

    inputs = load_contribution_inputs(wh, config.contribution_window_s, at)
    contributions = decide_contribution(members, inputs, config, at)
    record_contribution(wh, run_id, contributions)
    intel_rows = update_fee_intelligence(wh, member_ids, at)

    summary: dict[str, Any] = {}
    health_of = {h.name: h for h in healths}
    contribution_of = {c.name: c for c in contributions}
    for name in names:
        error = errors.get(name)
        mine = [p for p in plans if p.member_name == name]
        if error:
            raise_alert(
                wh,
                loop=LOOP,
                kind="fleet_member_unscored",
                severity="warning",
                message=error,
                raised_at=at,
                node=name,
            )
        health, contribution = health_of.get(name), contribution_of.get(name)
        detail = {
            "tier": str(health.tier) if health else None,
            "health": health.health_score if health else None,
            "assistance": [f"{p.kind}:{p.state}" for p in mine],
            "uptime_pct": contribution.uptime_pct if contribution else None,
            "error": error,
        }
        heartbeat_finish(
            wh,
            run_id,
            LOOP,
            name,
            at,
            ok=error is None,
            decisions=(1 if health else 0) + len(mine),
            rows_written=written[name] + len(mine) + (1 if contribution else 0),
            detail=detail,
        )
        summary[name] = detail
    heartbeat_finish(
        wh,
        run_id,
        LOOP,
        FLEET_WIDE,
        at,
        ok=True,
        decisions=len(outcomes),
        rows_written=len(outcomes) + intel_rows,
        detail={"outcomes": len(outcomes), "fee_intel_peers": intel_rows},
    )
    summary[FLEET_WIDE] = {"outcomes": len(outcomes), "fee_intel_peers": intel_rows}
    if errors:
        raise LoopFailed(" | ".join(errors[n] for n in sorted(errors)))
    return summary
