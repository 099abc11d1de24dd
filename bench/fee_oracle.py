"""Same demand for every fee policy, a fast replay of it, and the hindsight oracle's search.

`lnsim.simmarket.Market` draws payments, hop outcomes, competitor moves and outages from one
random stream, so a policy that reroutes one payment changes every later payment: two policies
would not face the same demand. Here the demand is a trace drawn once per scenario (arrival time,
payer, payee, amount), competitor walks and outages have their own streams, and each payment's
hop outcomes come from its own stream keyed by its index (common random numbers).

That also makes a replay cheap. Raising our node's fees only makes routes through it dearer, so
a payment that avoids every fleet node while our node charges 0/0 (the relevance probe) takes the
same routes, with the same outcomes, under any fees we might post: it cannot change fleet state.
The replay routes only the payments the probe marked. With competitors that react to our fees
(scenario competitors.undercut_share > 0) that argument fails, and every payment is replayed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lnsim.payments import AdvanceReport
from lnsim.scenario_model import Scenario
from lnsim.simmarket import Market
from lnsim.state import Network

_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15


class HopStream:
    """splitmix64: a tiny per-payment stream with the one method Payments draws (random())."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK64

    def random(self) -> float:
        self.state = (self.state + _GOLDEN64) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return ((z ^ (z >> 31)) >> 11) * 2.0**-53


@dataclass(frozen=True, slots=True)
class Arrival:
    index: int
    at: float
    source: str
    dest: str
    amount_msat: int


def demand_trace(scenario: Scenario, net: Network, days: float) -> list[Arrival]:
    """The scenario's demand as Market draws it (Poisson arrivals, uniform payer, payee weighted
    by capacity, log-normal amount), from a stream of its own."""
    rng = random.Random(f"hiveops-bench-demand:{scenario.seed}")
    demand = scenario.demand
    external = sorted(pk for pk, n in net.nodes.items() if n.fleet is None)
    cum = list(
        itertools.accumulate(
            sum(net.channels[s].capacity_msat for s in net.nodes[pk].channels) for pk in external
        )
    )
    rate_per_s = demand.payments_per_hour / 3600
    t, end = float(net.now), net.now + days * 86_400
    out: list[Arrival] = []
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= end:
            return out
        source = external[rng.randrange(len(external))]
        dest = external[bisect.bisect_right(cum, rng.random() * cum[-1])]
        sat = rng.lognormvariate(math.log(demand.amount_median_sat), demand.amount_sigma)
        amount_sat = int(min(max(sat, demand.amount_min_sat), demand.amount_max_sat))
        if dest != source:
            out.append(Arrival(len(out), t, source, dest, amount_sat * 1000))


class ReplayMarket(Market):
    """Market driven by a demand trace, with separate streams and no sling (fees only).

    Walks and outages run exactly as in Market (its own methods, handed their own stream).
    `touched` collects the indices of arrivals whose route crossed a fleet node.
    """

    def __init__(self, net: Network, scenario: Scenario, arrivals: Sequence[Arrival]) -> None:
        self._arrivals = arrivals
        self._cursor = 0
        super().__init__(net, scenario)
        seed = scenario.seed
        self._walk_rng = random.Random(f"hiveops-bench-walk:{seed}")
        self._outage_rng = random.Random(f"hiveops-bench-outage:{seed}")
        self._hop_seed = (seed * 0x2545F4914F6CDD1D) & _MASK64
        self._next_payment = arrivals[0].at if arrivals else math.inf
        self._next_sling = math.inf
        self.touched: set[int] = set()

    def _interarrival(self) -> float:
        nxt = self._cursor + 1
        return self._arrivals[nxt].at - self._clock if nxt < len(self._arrivals) else math.inf

    def _random_payment(self, t: float, report: AdvanceReport) -> None:
        arrival = self._arrivals[self._cursor]
        self._cursor += 1
        self.payments.rng = HopStream(self._hop_seed ^ (arrival.index * _GOLDEN64))  # type: ignore[assignment]
        ok, booked = self.payments.pay(arrival.source, arrival.dest, arrival.amount_msat, t)
        report.payments += 1
        report.succeeded += ok
        report.fleet_forwards += booked
        if booked:
            self.touched.add(arrival.index)

    def _walk_competitor_fees(self) -> None:
        self.rng = self._walk_rng
        super()._walk_competitor_fees()

    def _outages(self) -> None:
        self.rng = self._outage_rng
        super()._outages()


def filter_is_exact(scenario: Scenario) -> bool:
    """The relevance filter holds while competitors ignore our fees."""
    return scenario.competitors.undercut_share == 0


# -- the oracle: best fixed fee vector, by search over a coarse grid ------------------------------

FEE_GRID_PPM = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2500)
SCREEN_PPM = FEE_GRID_PPM[::2]

Fees = tuple[tuple[int, int], ...]  # (base_msat, ppm) per searched channel, in a fixed order


@dataclass(frozen=True)
class Evaluation:
    fees: Fees
    revenue_msat: int
    by_channel_msat: tuple[int, ...]
    label: str


Evaluate = Callable[[list[tuple[Fees, str]]], list[Evaluation]]


@dataclass
class OracleSearch:
    """Search over fixed fees; every point is a real replay, the oracle is the best one evaluated.

    1. Screen: one replay per `screen_ppm` fee with every channel at it. Each channel's own
       revenue at each fee seen so far (screen and seeds, e.g. the static baselines) gives a
       separable first guess, which is evaluated.
    2. Rounds (up to `rounds`, 3 replays each): from the best point, every channel one grid step
       up, and every channel one step down; each channel keeps the move its own revenue prefers;
       the combination is evaluated. Stops when a round finds nothing better.
    3. Polish: the `polish` highest-earning channels each moved alone one step up and down (in
       parallel); the improving moves are combined and evaluated. This is the part that sees
       substitution between our own channels, and the costly part (2 replays per channel).
    """

    evaluate: Evaluate
    channels: int
    grid_ppm: Sequence[int] = FEE_GRID_PPM
    screen_ppm: Sequence[int] = SCREEN_PPM
    rounds: int = 3
    polish: int = 4
    evaluations: list[Evaluation] = field(default_factory=list)

    def run(self, seeds: Sequence[Evaluation]) -> Evaluation:
        self.evaluations = list(seeds)
        n = range(self.channels)
        self._batch([(tuple((0, g) for _ in n), f"screen {g} ppm") for g in self.screen_ppm])
        separable = tuple(
            max(self.evaluations, key=lambda e, i=i: (e.by_channel_msat[i], -e.fees[i][1])).fees[i]
            for i in n
        )
        self._batch([(separable, "per-channel best of the screen")])
        for number in range(1, self.rounds + 1):
            start = self.best()
            up = tuple(self._step(fee, 1) for fee in start.fees)
            down = tuple(self._step(fee, -1) for fee in start.fees)
            tried = [
                start,
                *self._batch([(up, f"round {number} up"), (down, f"round {number} down")]),
            ]
            combined = tuple(max(tried, key=lambda e, i=i: e.by_channel_msat[i]).fees[i] for i in n)
            self._batch([(combined, f"round {number}: each channel's preferred step")])
            if self.best() is start:
                break
        self._polish()
        return self.best()

    def _polish(self) -> None:
        start = self.best()
        order = sorted(range(self.channels), key=lambda i: -start.by_channel_msat[i])
        moves = []
        for i in order[: self.polish]:
            for step in (-1, 1):
                fee = self._step(start.fees[i], step)
                if fee != start.fees[i]:
                    moves.append(
                        ((*start.fees[:i], fee, *start.fees[i + 1 :]), f"polish {i} {step:+d}")
                    )
        better = [e for e in self._batch(moves) if e.revenue_msat > start.revenue_msat]
        if len(better) > 1:
            combined = list(start.fees)
            for e in sorted(better, key=lambda e: e.revenue_msat):
                for i, fee in enumerate(e.fees):
                    if fee != start.fees[i]:
                        combined[i] = fee
            self._batch([(tuple(combined), f"polish: {len(better)} moves combined")])

    def best(self) -> Evaluation:
        return max(self.evaluations, key=lambda e: e.revenue_msat)

    def _batch(self, points: list[tuple[Fees, str]]) -> list[Evaluation]:
        known = {e.fees: e for e in self.evaluations}
        todo, seen = [], set(known)
        for fees, label in points:
            if fees not in seen:
                todo.append((fees, label))
                seen.add(fees)
        done = self.evaluate(todo) if todo else []
        self.evaluations += done
        known |= {e.fees: e for e in done}
        return [known[fees] for fees, _ in points]

    def _step(self, fee: tuple[int, int], step: int) -> tuple[int, int]:
        """One grid step up or down (a fee off the grid, or with a base fee, snaps to the grid)."""
        ppm, grid = fee[1], list(self.grid_ppm)
        if step > 0:
            return (0, grid[min(bisect.bisect_right(grid, ppm), len(grid) - 1)])
        return (0, grid[max(bisect.bisect_left(grid, ppm) - 1, 0)])
