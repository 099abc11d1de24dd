"""Fee policies for bench/fees.py, driven on a replayed market the way the fees flow drives them.

Each cycle builds the same FeeInputs frames the fees flow reads from the warehouse
(tasks/fees.load_fee_inputs over warehouse/queries/fees.sql), but straight from simulator state:
no Prefect, no DuckDB, so a simulated month takes seconds. Our controller is
engine.fees.plan.plan_fees with the flow's seeded rng; the baselines are engine.fees.baselines
strategies run through the same loop, plus two shapes the bench needs: a fee frozen at its first
decision (a static policy) and balance-proportional fees over a range around the market.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from bench.fee_oracle import Arrival, ReplayMarket
from engine.fees.baselines import (
    BalanceProportional,
    ClnDefault,
    FeeStrategy,
    PriceTheory,
    PriceTheoryState,
    StaticMarketMedian,
    StrategyResult,
)
from engine.fees.frames import FEE_CHANGE_SCHEMA, FORWARD_SCHEMA, PEER_POLICY_SCHEMA
from engine.fees.inputs import build_fee_history, build_market_view
from engine.fees.plan import FeeInputs, channel_states, plan_fees
from lnsim.scenario_model import Scenario
from lnsim.state import Network, Node
from lnsim.topology import build_network
from models.fees import ChannelFeeState, FeeDecision, FeeHistory, MarketView
from models.settings import FeeConfig

CHANNEL_SCHEMA: dict[str, Any] = {
    "node_id": pl.String(),
    "scid": pl.String(),
    "peer_id": pl.String(),
    "is_fleet": pl.Boolean(),
    "capacity_msat": pl.Int64(),
    "local_msat": pl.Int64(),
    "base_fee_msat": pl.Int64(),
    "fee_ppm": pl.Int64(),
    "taken_at": pl.Datetime("us", "UTC"),
}


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class FrameBook:
    """The warehouse's view of one node, kept up to date from the simulator as it runs."""

    def __init__(self, net: Network, node: Node) -> None:
        self.net, self.node = net, node
        self.fleet_ids = {pk for pk, n in net.nodes.items() if n.fleet is not None}
        self.started_at = _at(net.now)
        self._seen = 0
        self._forwards: list[pl.DataFrame] = []
        self._changes: list[dict[str, Any]] = []

    def our_channels(self) -> list[Any]:
        return [c for c in self.net.channels_of(self.node.pubkey) if c.is_normal]

    def inputs(self, now: datetime) -> FeeInputs:
        """fees.channels / first_seen / forwards / changes / peer_policies, as of `now`."""
        pk = self.node.pubkey
        channels = self.our_channels()
        rows = [
            {
                "node_id": pk,
                "scid": c.scid,
                "peer_id": c.other(pk),
                "is_fleet": c.other(pk) in self.fleet_ids,
                "capacity_msat": c.capacity_msat,
                "local_msat": c.local_msat(pk),
                "base_fee_msat": c.policy_from(pk).base_fee_msat,
                "fee_ppm": c.policy_from(pk).fee_ppm,
                "taken_at": now,
            }
            for c in channels
        ]
        return FeeInputs(
            node_id=pk,
            channels=pl.DataFrame(rows, schema=CHANNEL_SCHEMA),
            first_seen=pl.DataFrame(
                {"scid": [c.scid for c in channels], "first_seen_at": [self.started_at] * len(rows)}
            ),
            forwards=self._forward_frame(now),
            changes=pl.DataFrame(self._changes, schema=FEE_CHANGE_SCHEMA),
            peer_policies=self._peer_policies(channels),
            policies=(),
        )

    def log_change(self, decision: FeeDecision) -> None:
        """An applied change, as fees.changes returns it."""
        self._changes.append(
            {
                "scid": decision.scid,
                "changed_at": decision.decided_at,
                "new_ppm": decision.new_fee_ppm,
                "reason": str(decision.reason),
                "change_id": uuid.uuid4().hex,
                "predicted_benefit_msat": decision.predicted_benefit_msat,
            }
        )

    def _forward_frame(self, now: datetime) -> pl.DataFrame:
        fleet = self.node.fleet
        assert fleet is not None
        fresh = fleet.forwards[self._seen :]
        self._seen = len(fleet.forwards)
        settled = [f for f in fresh if f.status == "settled"]
        if settled:
            self._forwards.append(
                pl.DataFrame(
                    {
                        "in_channel": [f.in_channel for f in settled],
                        "out_channel": [f.out_channel for f in settled],
                        "in_msat": [f.in_msat for f in settled],
                        "out_msat": [f.out_msat for f in settled],
                        "fee_msat": [f.fee_msat for f in settled],
                        "status": ["settled"] * len(settled),
                        "resolved_at": [_at(f.resolved_time or f.received_time) for f in settled],
                    },
                    schema=FORWARD_SCHEMA,
                )
            )
            self._forwards = [pl.concat(self._forwards)]
        frame = self._forwards[0] if self._forwards else pl.DataFrame(schema=FORWARD_SCHEMA)
        return frame.filter(pl.col("resolved_at") <= now)

    def _peer_policies(self, channels: Sequence[Any]) -> pl.DataFrame:
        """listchannels destination=<peer> for each peer, latest update per (scid, direction)."""
        rows = []
        for peer in sorted({c.other(self.node.pubkey) for c in channels}):
            for c in self.net.channels_of(peer):
                if not c.is_normal:
                    continue
                source = c.other(peer)
                policy = c.policy_from(source)
                rows.append(
                    {
                        "scid": c.scid,
                        "direction": c.direction_from(source),
                        "last_update": policy.last_update,
                        "source_id": source,
                        "peer_id": peer,
                        "is_ours": source in self.fleet_ids,
                        "base_fee_msat": policy.base_fee_msat,
                        "fee_ppm": policy.fee_ppm,
                        "active": policy.enabled,
                    }
                )
        return pl.DataFrame(rows, schema=PEER_POLICY_SCHEMA)


class BenchPolicy(Protocol):
    name: str
    adaptive: bool  # False: decides once at the start and holds

    def plan(self, inputs: FeeInputs, config: FeeConfig, now: datetime) -> list[FeeDecision]: ...


@dataclass
class Controller:
    """Our controller exactly as flows/fees.decide_fees calls it."""

    name: str = "controller"
    adaptive: bool = True

    def plan(self, inputs: FeeInputs, config: FeeConfig, now: datetime) -> list[FeeDecision]:
        rng = random.Random(f"{inputs.node_id}:{int(now.timestamp())}")
        return plan_fees(inputs, config, now, rng)


@dataclass
class StrategyPolicy:
    """An engine.fees.baselines strategy over the same frames plan_fees reads."""

    strategy: FeeStrategy
    name: str
    adaptive: bool = True
    states: dict[str, Any] = field(default_factory=dict)

    def plan(self, inputs: FeeInputs, config: FeeConfig, now: datetime) -> list[FeeDecision]:
        rng = random.Random(f"{self.name}:{inputs.node_id}:{int(now.timestamp())}")
        out = []
        for channel in channel_states(inputs, now):
            state = self.states.get(channel.scid)
            history = FeeHistory(scid=channel.scid)
            if _reads_history(self.strategy, state, now):
                history = build_fee_history(
                    channel.scid,
                    inputs.forwards,
                    inputs.changes,
                    now=now,
                    current_fee_ppm=channel.fee_ppm,
                    observed_since=inputs.first_seen["first_seen_at"].min(),  # type: ignore[arg-type]
                )
            market = build_market_view(channel.peer_id, inputs.peer_policies, now=now)
            result = self.strategy.decide(channel, history, market, config, now, rng, state)
            self.states[channel.scid] = result.state
            out.append(result.decision)
        return out


def _reads_history(strategy: FeeStrategy, state: Any, now: datetime) -> bool:
    """Baselines use the history only for their predictions (not compared here), except price
    theory when a card ends; building it is most of a cycle's cost, so it is built only then."""
    if not isinstance(strategy, PriceTheory) or not isinstance(state, PriceTheoryState):
        return False
    return (now - state.card_started_at).total_seconds() >= strategy.card_s


@dataclass(frozen=True)
class MarketProportional:
    """charge-lnd's proportional strategy with its range set around the market: the fee runs
    linearly from `high` × median (channel empty) to `low` × median (channel full), so it posts
    the competitors' median at half balance. A fair operator's setup, not a strawman range."""

    name: str = "balance_proportional"
    low: float = 0.5
    high: float = 1.5

    def decide(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any = None,
    ) -> StrategyResult:
        median = market.median_ppm or channel.fee_ppm or 1
        inner = BalanceProportional(
            name=self.name,
            min_fee_ppm=max(round(median * self.low), 0),
            max_fee_ppm=max(round(median * self.high), 1),
        )
        return inner.decide(channel, history, market, config, now, rng, state)


def standard_policies() -> list[BenchPolicy]:
    """The issue's line-up, in table order (the oracle is added by bench/fees.py)."""
    return [
        StrategyPolicy(ClnDefault(), "cln_default", adaptive=False),
        StrategyPolicy(StaticMarketMedian(), "static_median", adaptive=False),
        StrategyPolicy(MarketProportional(), "balance_proportional"),
        StrategyPolicy(PriceTheory(), "clboss_price_theory"),
        Controller(),
    ]


@dataclass(frozen=True)
class RunResult:
    policy: str
    revenue_msat: int
    by_channel_msat: dict[str, int]
    settled_by_channel: dict[str, int]
    mean_fee_ppm: dict[str, float]  # time-weighted posted ppm
    final_fees: dict[str, tuple[int, int]]
    changes: int
    wall_s: float
    reasons: dict[str, int] = field(default_factory=dict)  # applied changes by reason
    change_offsets_s: dict[str, list[float]] = field(default_factory=dict)  # per scid, from t0
    first_day_fee_ppm: dict[str, float] = field(default_factory=dict)  # time-weighted, day 1
    start_market_ppm: dict[str, float | None] = field(default_factory=dict)  # competitor median


def changes_per_channel_week(result: RunResult, scids: Sequence[str], days: float) -> list[float]:
    """Each channel's applied fee changes per week after the first 7 days (the cold start)."""
    weeks = (days - 7) / 7
    if weeks <= 0:
        return []
    return [
        sum(t >= 7 * 86_400 for t in result.change_offsets_s.get(scid, [])) / weeks
        for scid in scids
    ]


def external_scids(net: Network, node_name: str) -> list[str]:
    """Our node's non-fleet channels, sorted: the channels whose fees the bench compares."""
    node = net.node_by_name(node_name)
    return sorted(
        c.scid
        for c in net.channels_of(node.pubkey)
        if net.nodes[c.other(node.pubkey)].fleet is None
    )


def run_policy(
    scenario: Scenario,
    node_name: str,
    days: float,
    arrivals: Sequence[Arrival],
    policy: BenchPolicy | None = None,
    *,
    fixed: dict[str, tuple[int, int]] | None = None,
    config: FeeConfig | None = None,
    every_s: int = 1800,
) -> RunResult:
    """One simulated run: `fixed` fees set once, or `policy` planned every `every_s`."""
    import time

    started = time.monotonic()
    config = config or FeeConfig()
    net = build_network(scenario)
    market = ReplayMarket(net, scenario, arrivals)
    node = net.node_by_name(node_name)
    book = FrameBook(net, node)
    scids = [c.scid for c in book.our_channels()]
    fee_time: dict[str, float] = dict.fromkeys(scids, 0.0)
    first_day: dict[str, float] = dict.fromkeys(scids, 0.0)
    offsets: dict[str, list[float]] = {scid: [] for scid in scids}
    start_inputs = book.inputs(_at(net.now))
    start_market = {
        row["scid"]: build_market_view(
            row["peer_id"], start_inputs.peer_policies, now=_at(net.now)
        ).median_ppm
        for row in start_inputs.channels.iter_rows(named=True)
    }
    t0 = net.now
    changes = 0
    reasons: dict[str, int] = {}
    end = net.now + int(days * 86_400)
    if fixed is not None:
        for scid, (base, ppm) in fixed.items():
            market.set_fee(node.pubkey, scid, base, ppm)
    decided = False
    while net.now < end:
        now = _at(net.now)
        if policy is not None and (policy.adaptive or not decided):
            for decision in policy.plan(book.inputs(now), config, now):
                if decision.apply:
                    market.set_fee(
                        node.pubkey,
                        decision.scid,
                        decision.new_base_fee_msat,
                        decision.new_fee_ppm,
                    )
                    book.log_change(decision)
                    offsets.setdefault(decision.scid, []).append(net.now - t0)
                    changes += 1
                    reasons[str(decision.reason)] = reasons.get(str(decision.reason), 0) + 1
            decided = True
        step = min(every_s if policy is not None and policy.adaptive else end, end - net.now)
        day_step = max(min(step, t0 + 86_400 - net.now), 0)
        for scid in scids:
            ppm = net.channels[scid].policy_from(node.pubkey).fee_ppm
            fee_time[scid] += ppm * step
            first_day[scid] += ppm * day_step
        market.advance(step)
    fleet = node.fleet
    assert fleet is not None
    by_channel = dict.fromkeys(scids, 0)
    settled = dict.fromkeys(scids, 0)
    for f in fleet.forwards:
        if f.status == "settled" and f.out_channel in by_channel:
            by_channel[f.out_channel] += f.fee_msat or 0
            settled[f.out_channel] += 1
    total_s = max(days * 86_400, 1)
    return RunResult(
        policy=policy.name if policy is not None else "fixed",
        revenue_msat=sum(by_channel.values()),
        by_channel_msat=by_channel,
        settled_by_channel=settled,
        mean_fee_ppm={s: fee_time[s] / total_s for s in scids},
        final_fees={
            s: (
                net.channels[s].policy_from(node.pubkey).base_fee_msat,
                net.channels[s].policy_from(node.pubkey).fee_ppm,
            )
            for s in scids
        },
        changes=changes,
        wall_s=time.monotonic() - started,
        reasons=reasons,
        change_offsets_s=offsets,
        first_day_fee_ppm={s: first_day[s] / min(total_s, 86_400) for s in scids},
        start_market_ppm=start_market,
    )


def relevant_arrivals(
    scenario: Scenario, node_name: str, days: float, arrivals: Sequence[Arrival]
) -> list[Arrival]:
    """The relevance probe (see bench/fee_oracle.py): our node at 0/0, every payment routed."""
    net = build_network(scenario)
    market = ReplayMarket(net, scenario, arrivals)
    node = net.node_by_name(node_name)
    for scid in external_scids(net, node_name):
        market.set_fee(node.pubkey, scid, 0, 0)
    market.advance(int(days * 86_400))
    return [a for a in arrivals if a.index in market.touched]
