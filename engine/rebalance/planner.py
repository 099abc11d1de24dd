"""One rebalance cycle for one node: a proposal or a reasoned skip for every channel (pure).

Order of judgement, so the stored reason names the first thing that stood in the way:
operator policy (never / source-only) → role (balanced / source / at target / fleet) →
channel usable → breaker (suspended, backoff) → a job already holding budget → ping-pong →
multi-channel peer (the peer's other channel already holds outbound) → sources → amount →
EV gate → route price (gossip's cheapest circular route within the gain, when gossip was
read) → remembered route failures → attempt limit and budget (engine.rebalance.allocate:
fleet assistance first, then by predicted benefit, shrinking a pull to fit).

Returns proposals in execution order, then skips by scid. The flow reserves each proposal's
`max_cost_msat` with `budget.reserve` (inside its transaction) before starting the job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.rebalance.allocate import allocate
from engine.rebalance.breaker import breaker_block, ping_pong_reason, route_floor_ppm
from engine.rebalance.budget import available_msat
from engine.rebalance.chunks import chunk_plan, repeat_chunks
from engine.rebalance.classify import classify_channels
from engine.rebalance.ev import (
    demand_capped_amount_msat,
    evaluate_pull,
    size_pull_amount_msat,
    spare_msat,
)
from engine.rebalance.policy import ResolvedMode, resolve_modes
from engine.rebalance.routes import GossipGraph, RoutePricer
from engine.rebalance.sources import peer_need, select_sources
from models.budget import BudgetLedger
from models.rebalance import (
    DEFAULT_REBALANCE_TUNING,
    MSAT_PER_SAT,
    PPM,
    AttemptRecord,
    BreakerState,
    ChannelClass,
    FlowRole,
    PullEvaluation,
    RebalanceChannel,
    RebalanceProposal,
    RebalanceTuning,
    Skip,
    SkipReason,
)
from models.rebalance_policy import RebalanceMode, RebalancePolicy
from models.settings import RebalanceConfig


@dataclass(frozen=True)
class _Cycle:
    """What every destination of one run is judged against."""

    channels: Sequence[RebalanceChannel]
    classes: dict[str, ChannelClass]
    ledger: BudgetLedger
    breaker: BreakerState
    config: RebalanceConfig
    now: datetime
    attempts: tuple[AttemptRecord, ...]
    busy: set[str]
    tuning: RebalanceTuning
    pricer: RoutePricer | None
    modes: dict[str, ResolvedMode]


def plan_rebalances(
    channels: Sequence[RebalanceChannel],
    flows: pl.DataFrame,
    ledger: BudgetLedger,
    breaker_state: BreakerState,
    config: RebalanceConfig,
    now: datetime,
    *,
    attempts: Iterable[AttemptRecord] = (),
    assist_scids: Iterable[str] = (),
    tuning: RebalanceTuning = DEFAULT_REBALANCE_TUNING,
    gossip: GossipGraph | None = None,
    policies: Iterable[RebalancePolicy] = (),
) -> list[RebalanceProposal | Skip]:
    """Proposals and skips for `channels` of `ledger.node_id`.

    `flows` is the node's forwards frame (engine.fees.frames.FORWARD_SCHEMA); `attempts` the
    recent finished rebalance attempts (ping-pong window); `assist_scids` fleet channels the
    fleet loop wants refilled, exempt from the EV gate but never from the budget; `gossip` the
    public graph, to price routes before paying for a job (None: the price is left to sling);
    `policies` the operators' rebalance modes, honoured before anything else (fleet assistance
    included: an operator's `never` wins over the fleet's request, and config check warns).
    """
    assist = set(assist_scids)
    cycle = _Cycle(
        channels=channels,
        classes=classify_channels(channels, flows, now, tuning),
        ledger=ledger,
        breaker=breaker_state,
        config=config,
        now=now,
        attempts=tuple(attempts),
        busy={r.scid for r in ledger.reservations if r.scid is not None},
        tuning=tuning,
        pricer=None if gossip is None else RoutePricer(gossip, ledger.node_id),
        modes=resolve_modes(channels, policies),
    )
    skips: list[Skip] = []
    ready: list[RebalanceProposal] = []
    for dest in sorted(channels, key=lambda c: c.scid):
        outcome = _plan_destination(dest, cycle, exempt=dest.scid in assist)
        (ready if isinstance(outcome, RebalanceProposal) else skips).append(outcome)

    by_scid = {c.scid: c for c in channels}

    def refit(proposal: RebalanceProposal, amount_cap_msat: int) -> RebalanceProposal | None:
        again = _plan_destination(
            by_scid[proposal.dest_scid],
            cycle,
            exempt=proposal.exempt_from_ev,
            amount_cap_msat=amount_cap_msat,
        )
        return again if isinstance(again, RebalanceProposal) else None

    accepted, refused = allocate(ready, ledger, available_msat(ledger), config, refit)
    return [*accepted, *sorted([*skips, *refused], key=lambda s: s.scid)]


def _plan_destination(
    dest: RebalanceChannel, cycle: _Cycle, *, exempt: bool, amount_cap_msat: int | None = None
) -> RebalanceProposal | Skip:
    cls, tuning = cycle.classes[dest.scid], cycle.tuning
    base = {"role": cls.role.value, "local_share": round(dest.local_share, 4), "flow": cls.detail}

    def skip(reason: SkipReason, detail: str, **extra: object) -> Skip:
        return Skip(scid=dest.scid, reason=reason, detail=detail, inputs={**base, **extra})

    mode = cycle.modes[dest.scid]
    if not mode.mode.may_receive:
        reason = (
            SkipReason.POLICY_NEVER
            if mode.mode is RebalanceMode.NEVER
            else SkipReason.POLICY_SOURCE_ONLY
        )
        why = "never refilled" + (" (a fleet-assistance request is refused)" if exempt else "")
        return skip(reason, f"{mode.describe()}: {why}", policy_id=mode.policy_id)
    target = tuning.target_local_share
    if dest.local_share >= target and (exempt or cls.role is FlowRole.SINK):
        return skip(SkipReason.AT_TARGET, f"{dest.local_share:.0%} local ≥ target {target:.0%}")
    if not exempt:
        if cls.role is FlowRole.SOURCE:
            return skip(SkipReason.IS_SOURCE, f"source: {cls.detail}")
        if cls.role is FlowRole.BALANCED:
            return skip(SkipReason.BALANCED, cls.detail)
        if dest.is_fleet:
            why = (
                "fleet channel: refilled only as fleet assistance (assist_scids); at the fleet fee"
            )
            return skip(SkipReason.FLEET_CHANNEL, f"{why} it earns nothing to pay a rebalance from")
    if not dest.usable:
        return skip(SkipReason.CHANNEL_INACTIVE, "channel not normal or peer disconnected")
    blocked = breaker_block(cycle.breaker, dest.scid, cycle.now)
    if blocked is not None:
        return skip(*blocked)
    if dest.scid in cycle.busy:
        return skip(SkipReason.JOB_RUNNING, "an open reservation's job is still on this channel")
    loop = ping_pong_reason(
        dest.scid, as_destination=True, attempts=cycle.attempts, now=cycle.now, tuning=tuning
    )
    if loop is not None:
        return skip(SkipReason.PING_PONG, loop)

    need, crowded = peer_need(dest, cycle.channels, tuning)
    if crowded is not None:
        return skip(SkipReason.MULTI_CHANNEL_PEER, crowded[0], siblings=crowded[1])
    if amount_cap_msat is not None:
        need = min(need, amount_cap_msat)
    chunking = chunk_plan(dest.scid, cycle.attempts, tuning)
    chunk_need = need if chunking.cap_msat is None else min(need, chunking.cap_msat)

    selection = select_sources(
        dest,
        cycle.channels,
        cycle.classes,
        attempts=cycle.attempts,
        busy_scids=cycle.busy,
        now=cycle.now,
        # fleet assistance pulls over fleet channels (0 fee at the member): the point of it
        tuning=tuning.model_copy(update={"fleet_as_source": True}) if exempt else tuning,
        modes=cycle.modes,
    )
    if not selection.eligible:
        return skip(selection.skip_reason(), selection.describe())

    evaluations: list[PullEvaluation] = []
    for source in selection.eligible:
        amount = size_pull_amount_msat(
            dest, source, cycle.config, tuning, need_override_msat=chunk_need
        )
        if amount and not exempt:
            amount = demand_capped_amount_msat(
                amount, dest, cls, tuning, source=source, source_cls=cycle.classes[source.scid]
            )
        if amount:
            evaluations.append(_evaluate(dest, source, amount, cycle, exempt))
    if not evaluations:
        return skip(
            SkipReason.AMOUNT_TOO_SMALL,
            (
                f"need {need // MSAT_PER_SAT} sat; no source can move the "
                f"{tuning.min_amount_sat} sat minimum within chunk and capacity limits"
            ),
        )
    spare = {source.scid: spare_msat(source, tuning) for source in selection.eligible}
    best = min(
        evaluations,
        key=lambda e: (
            not e.passes,
            -e.predicted_benefit_msat,
            -spare[e.source_scid],
            e.source_scid,
        ),
    )
    if not best.passes:
        if best.route_refused:
            return skip(SkipReason.ROUTE_TOO_EXPENSIVE, best.detail, **_eval_inputs(best))
        return skip(SkipReason.EV_BELOW_COST, best.detail, **_eval_inputs(best))
    floor = route_floor_ppm(dest.scid, cycle.attempts, cycle.now, tuning)
    if floor is not None and best.maxppm <= floor[0]:
        ppm, failed = floor
        return skip(
            SkipReason.NO_CHEAP_ROUTE,
            (
                f"sling found no route into {dest.scid} within {ppm} ppm at "
                f"{failed.finished_at:%Y-%m-%d %H:%M} UTC ({failed.attempt_id}); the gain "
                f"allows only {best.maxppm} ppm"
            ),
            route_floor_ppm=ppm,
            **_eval_inputs(best),
        )
    if not best.exempt_from_ev and chunking.repeats > 1:
        by_scid = {c.scid: c for c in selection.eligible}
        source = by_scid[best.source_scid]
        best = repeat_chunks(
            dest,
            cls,
            source,
            cycle.classes[source.scid],
            best,
            need_msat=need,
            repeats=chunking.repeats,
            config=cycle.config,
            tuning=tuning,
        )
    base = {**base, "chunking": chunking.detail}
    return _proposal(dest, best, selection.eligible, cycle, base)


def _evaluate(
    dest: RebalanceChannel,
    source: RebalanceChannel,
    amount_msat: int,
    cycle: _Cycle,
    exempt: bool,
) -> PullEvaluation:
    """The EV verdict at the route's price: with a gossip quote, up to the quoted share of the
    gain may be paid, and the pull passes only if the cheapest route fits under its maxppm."""
    dest_cls, source_cls = cycle.classes[dest.scid], cycle.classes[source.scid]
    exempt = exempt or not cycle.config.ev_gate
    quote = None
    if cycle.pricer is not None:
        quote = cycle.pricer.quote(
            source_peer=source.peer_id,
            dest_peer=dest.peer_id,
            dest_scid=dest.scid,
            amount_msat=amount_msat,
        )
    verdict = evaluate_pull(
        dest,
        dest_cls,
        source,
        source_cls,
        amount_msat,
        cycle.config,
        cycle.tuning,
        exempt_from_ev=exempt,
        cost_share=None if quote is None else cycle.tuning.quoted_cost_share_of_gain,
    )
    if cycle.pricer is None or not verdict.passes:
        return verdict
    if quote is None:
        sat = amount_msat // MSAT_PER_SAT
        why = f"no route in gossip from {source.scid} back into {dest.scid} for {sat} sat"
    elif quote.ppm > verdict.maxppm:
        why = (
            f"cheapest route from {source.scid} back into {dest.scid} costs {quote.ppm} ppm over "
            f"{len(quote.scids)} hops (gossip); the gain allows {verdict.maxppm} ppm"
        )
    else:
        return verdict.model_copy(update={"route_ppm": quote.ppm})
    refused = {
        "passes": False,
        "route_refused": True,
        "route_ppm": None if quote is None else quote.ppm,
        "detail": f"{why}; {verdict.detail}",
    }
    return verdict.model_copy(update=refused)


def _proposal(
    dest: RebalanceChannel,
    best: PullEvaluation,
    eligible: Sequence[RebalanceChannel],
    cycle: _Cycle,
    base: dict[str, object],
) -> RebalanceProposal:
    """The proposal around the best source, plus (most spare first) sources that pass at the same
    amount without lowering maxppm: sling may use any candidate, so each must be worth the price,
    and several give it more routes to try before NoCandidates / NoRoutes."""
    tuning, ledger, now = cycle.tuning, cycle.ledger, cycle.now
    amount = best.amount_msat
    chosen = [best]
    by_scid = {c.scid: c for c in eligible}
    spare = {source.scid: spare_msat(source, tuning) for source in eligible}
    for source in sorted(eligible, key=lambda c: (-spare[c.scid], c.scid)):
        if len(chosen) >= tuning.max_candidates or source.scid == best.source_scid:
            continue
        if spare[source.scid] < amount:
            continue
        other = _evaluate(dest, source, amount, cycle, best.exempt_from_ev)
        if other.passes and other.maxppm >= best.maxppm:
            chosen.append(other)
    worst = min(chosen, key=lambda e: (e.gain_msat, e.source_scid))
    maxppm = min(e.maxppm for e in chosen)  # = best's: others join only at its price or above
    max_cost = math.ceil(amount * maxppm / PPM)
    sources = [by_scid[e.source_scid] for e in chosen]
    outppm = max(s.fee_ppm + math.ceil(s.base_fee_msat * PPM / amount) for s in sources)
    return RebalanceProposal(
        attempt_id=f"{ledger.node_id[:16]}:{dest.scid}:{now:%Y%m%dT%H%M%SZ}",
        node_id=ledger.node_id,
        dest_scid=dest.scid,
        amount_msat=amount,
        maxppm=maxppm,
        candidates=tuple(e.source_scid for e in chosen),
        outppm=outppm,
        target=tuning.target_local_share,
        depleteuptopercent=tuning.deplete_share,
        depleteuptoamount_sat=tuning.deplete_max_sat,
        # both sides of the move: outbound sold at the destination plus inbound freed at the
        # source; the source's lost outbound plus the destination's lost inbound
        expected_revenue_msat=worst.expected_revenue_msat + worst.inbound_value_msat,
        opportunity_cost_msat=worst.opportunity_cost_msat + worst.dest_inbound_cost_msat,
        predicted_benefit_msat=worst.gain_msat - max_cost,
        max_cost_msat=max_cost,
        horizon_s=tuning.horizon_s,
        exempt_from_ev=best.exempt_from_ev,
        proposed_at=now,
        chunk_msat=best.chunk_msat,
        inputs={
            **base,
            "detail": worst.detail,
            "evaluation": _eval_inputs(worst),  # the candidate the predictions come from
            "candidates": [_eval_inputs(e) for e in chosen],
        },
    )


def _eval_inputs(evaluation: PullEvaluation) -> dict[str, object]:
    """JSON-safe numbers the flow stores with a proposal or an ev_below_cost skip."""
    return evaluation.model_dump(mode="json", exclude={"detail", "dest_scid", "horizon_s"})
