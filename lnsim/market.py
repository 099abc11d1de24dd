"""The simulated clock and everything that happens as it advances.

`Market.advance` processes events in time order: payments between external nodes (Poisson
arrivals, log-normal amounts, destinations weighted by capacity), competitor fee moves, external
peer outages, confirmations of opens and closes, and sling rebalance attempts. It takes the
network lock per event, so RPC calls interleave with a running clock and never see half a
payment. Every random choice comes from a stream seeded by the scenario (one stream per
subsystem, so changing our fees does not reshuffle which payments arrive): same scenario and
seed, same history.

Node actions (setchannel, fundchannel, close, ...) live in `lnsim.node_actions`.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from lnsim.forwarding import Forwarder
from lnsim.node_actions import NodeActions
from lnsim.routing import Router
from lnsim.scenario import Scenario
from lnsim.sling import Sling
from lnsim.state import Network, Policy
from lnsim.synth import synthesize_forwards

PAYMENT, WALK, TOGGLE, HIDE, CONFIRM, SLING = range(6)


@dataclass
class AdvanceReport:
    payments: int = 0
    succeeded: int = 0
    fleet_forwards: int = 0
    rebalance_attempts: int = 0
    wall_s: float = 0.0


class Market(NodeActions):
    def __init__(
        self,
        network: Network,
        scenario: Scenario,
        seed: int | None = None,
        sling_dir: Path | str | None = None,
    ) -> None:
        self.net, self.scenario = network, scenario
        self.seed = scenario.seed if seed is None else seed
        streams = random.Random(self.seed)
        self.demand_rng, self.walk_rng, self.outage_rng, hop_rng, self.sling_rng = (
            random.Random(streams.getrandbits(64)) for _ in range(5)
        )
        self.router = Router(network)
        self.forwarder = Forwarder(network, hop_rng)
        self.sling = {
            n.pubkey: Sling(self, n.pubkey, None if sling_dir is None else Path(sling_dir) / name)
            for n in network.fleet_nodes()
            if n.fleet is not None
            for name in [n.fleet.name]
        }
        self._external = sorted(pk for pk, n in network.nodes.items() if n.fleet is None)
        self._dest_weights = self._cumulative(capacity=True)
        self._source_weights = (
            self._dest_weights
            if scenario.demand.source_weighting == "capacity"
            else self._cumulative(capacity=False)
        )
        self._walkable = self._external_policies()
        self._clock = float(network.now)
        self._events: list[tuple[float, int, int, str]] = []
        self._seq = itertools.count()
        self._schedule(self._clock + self._interarrival(), PAYMENT)
        self._schedule(self._clock + scenario.competitors.walk_every_s, WALK)
        self._schedule(self._clock + scenario.sling.attempt_every_s, SLING)
        self._init_outages()
        self._scid_counter = itertools.count(1)

    # -- setup -----------------------------------------------------------------------------
    def _cumulative(self, capacity: bool) -> list[int]:
        if not capacity:
            return list(range(1, len(self._external) + 1))
        weights = (
            sum(self.net.channels[s].capacity_msat for s in self.net.nodes[pk].channels) // 1000
            for pk in self._external
        )
        return list(itertools.accumulate(weights))

    def _external_policies(self) -> list[Policy]:
        """Policies whose sender is an external node: the ones competitors keep moving."""
        out = []
        for scid in sorted(self.net.channels):
            channel = self.net.channels[scid]
            for direction, sender in ((0, channel.node1), (1, channel.node2)):
                if self.net.nodes[sender].fleet is None and channel.policies[direction].enabled:
                    out.append(channel.policies[direction])
        return out

    def _init_outages(self) -> None:
        """Each external node alternates up/down; stationary share down = offline_probability."""
        spec = self.scenario.peers
        if spec.offline_probability <= 0:
            return
        for pk in self._external:
            down = self.outage_rng.random() < spec.offline_probability
            if down:
                self._toggle(pk, online=False, at=self._clock)
            self._schedule(self._clock + self._stay_s(down), TOGGLE, pk)

    def _stay_s(self, down: bool) -> float:
        spec = self.scenario.peers
        mean_down_s = spec.outage_mean_h * 3600
        mean_s = mean_down_s if down else mean_down_s * (1 - spec.offline_probability) / (
            spec.offline_probability
        )
        return self.outage_rng.expovariate(1 / mean_s)

    def _schedule(self, at: float, kind: int, ref: str = "") -> None:
        heapq.heappush(self._events, (at, next(self._seq), kind, ref))

    def _schedule_confirm(self, at: float, ref: str) -> None:
        self._schedule(at, CONFIRM, ref)

    def _interarrival(self) -> float:
        return self.demand_rng.expovariate(self.scenario.demand.payments_per_hour / 3600)

    # -- the clock -------------------------------------------------------------------------
    def advance(self, seconds: int) -> AdvanceReport:
        """Run the market for `seconds` of simulated time, one locked slice per event."""
        report = AdvanceReport()
        started = time.perf_counter()
        end = self._clock + seconds
        events, lock, net = self._events, self.net.lock, self.net
        while True:
            with lock:
                if not events or events[0][0] > end:
                    self._clock = end
                    net.now = int(end)
                    break
                at, _, kind, ref = heapq.heappop(events)
                self._clock = at
                net.now = int(at)
                if kind == PAYMENT:
                    self._schedule(at + self._interarrival(), PAYMENT)
                    self._random_payment(at, report)
                elif kind == SLING:
                    self._schedule(at + self.scenario.sling.attempt_every_s, SLING)
                    for sling in self.sling.values():
                        report.rebalance_attempts += sling.step(at)
                elif kind == WALK:
                    self._schedule(at + self.scenario.competitors.walk_every_s, WALK)
                    self._walk_competitor_fees()
                elif kind == TOGGLE:
                    online = not net.nodes[ref].online
                    self._toggle(ref, online, at)
                    self._schedule(at + self._stay_s(not online), TOGGLE, ref)
                elif kind == HIDE:
                    if not net.nodes[ref].online:
                        self.router.set_hidden(ref, True)
                else:
                    self._confirm(ref)
        report.wall_s = time.perf_counter() - started
        return report

    def _pick(self, cumulative: list[int]) -> str:
        r = self.demand_rng.random() * cumulative[-1]
        return self._external[bisect.bisect_right(cumulative, r)]

    def draw_amount_msat(self) -> int:
        d = self.scenario.demand
        sat = self.demand_rng.lognormvariate(math.log(d.amount_median_sat), d.amount_sigma)
        return int(min(max(sat, d.amount_min_sat), d.amount_max_sat)) * 1000

    def _random_payment(self, at: float, report: AdvanceReport) -> None:
        source = self._pick(self._source_weights)
        dest = self._pick(self._dest_weights)
        amount_msat = self.draw_amount_msat()
        if dest == source:
            return
        report.payments += 1
        ok, booked = self.pay(source, dest, amount_msat, at)
        report.succeeded += ok
        report.fleet_forwards += booked

    def pay(self, source: str, dest: str, amount_msat: int, at: float) -> tuple[bool, int]:
        """One payment with retries; returns (succeeded, hops booked at fleet nodes)."""
        demand = self.scenario.demand
        excluded: set[str] = set()
        booked = 0
        nodes = self.net.nodes
        for _ in range(demand.max_attempts):
            hops = self.router.route(
                source,
                dest,
                amount_msat,
                risk_factor_ppm=demand.risk_factor_ppm,
                hop_cost_ppm=demand.hop_cost_ppm,
                excluded_scids=excluded,
            )
            if hops is None:
                return False, booked
            outcome = self.forwarder.execute(hops, amount_msat, at)
            end = len(hops) if outcome.failed_at is None else outcome.failed_at + 1
            booked += sum(1 for i in range(1, end) if nodes[hops[i][0]].fleet is not None)
            if outcome.ok:
                return True, booked
            assert outcome.failed_at is not None
            excluded.add(hops[outcome.failed_at][2].scid)
        return False, booked

    def _walk_competitor_fees(self) -> None:
        spec, rng = self.scenario.competitors, self.walk_rng
        for policy in self._walkable:
            if rng.random() < spec.walk_fraction:
                factor = 1 + rng.uniform(-spec.walk_step, spec.walk_step)
                policy.fee_ppm = max(0, round(policy.fee_ppm * factor))
                policy.last_update = self.net.now

    def _toggle(self, pk: str, online: bool, at: float) -> None:
        """An external node goes down or comes back; fleet nodes see their peer (dis)connect."""
        self.net.nodes[pk].online = online
        for node in self.net.fleet_nodes():
            assert node.fleet is not None
            if pk in node.fleet.peers:
                node.fleet.peers[pk] = online and node.online
        if online:
            self.router.set_hidden(pk, False)
        else:
            self._schedule(at + self.scenario.peers.gossip_delay_s, HIDE, pk)

    def synthesize_forwards(self, node_pk: str, n: int, seed: int = 0) -> int:
        """Append `n` plausible forwards without routing; only for ingest benchmarks."""
        with self.net.lock:
            return synthesize_forwards(self.net, node_pk, n, seed)
