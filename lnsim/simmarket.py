"""The simulated clock and everything that happens as it advances.

`Market.advance` processes events in time order: payments (Poisson arrivals, log-normal
amounts, destinations weighted by capacity), competitor fee moves, external peer outages, channel
confirmations and sling rebalance attempts. It takes the network lock per event, so RPC calls
interleave with a running clock. Same scenario and seed, same history.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import time

from lnsim.pathfind import Graph
from lnsim.payments import AdvanceReport, Payments
from lnsim.scenario_model import CompetitorSpec, Scenario
from lnsim.simerrors import FUND_CANNOT_AFFORD, LIGHTNINGD, SimRpcError
from lnsim.slingsim import Sling
from lnsim.state import Channel, ChannelStats, Forward, Network, Policy, Utxo

LOCKIN_BLOCKS = 6


def _watches(scid: str, spec: CompetitorSpec) -> bool:
    """Whether the competitor on `scid` is one of the `undercut_share` that watch the fleet."""
    digest = hashlib.sha256(f"undercut:{scid}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < spec.undercut_share * 2**32


class Market:
    def __init__(self, net: Network, scenario: Scenario, seed: int | None = None) -> None:
        self.net, self.scenario = net, scenario
        self.rng = random.Random(scenario.seed if seed is None else seed)
        self.graph = Graph(net)
        self.payments = Payments(net, self.graph, scenario, self.rng)
        self.sling = {n.pubkey: Sling(self, n.pubkey) for n in net.fleet_nodes()}
        self._external = sorted(pk for pk, n in net.nodes.items() if n.fleet is None)
        weights = [
            sum(net.channels[s].capacity_msat for s in net.nodes[pk].channels)
            for pk in self._external
        ]
        self._cum_weights = list(itertools.accumulate(weights))
        self._clock = float(net.now)
        self._next_payment = self._clock + self._interarrival()
        self._next_walk = self._clock + scenario.competitors.walk_every_s
        self._next_outage_check = self._clock + 3600
        self._next_sling = self._clock + scenario.sling.attempt_every_s
        self._pending: list[tuple[int, str]] = []  # (confirm time, scid)
        self._scid_counter = itertools.count(1)
        self._undercut_own_ppm: dict[tuple[str, str], int] = {}  # (scid, toward peer) -> ppm

    # -- clock -----------------------------------------------------------------------------
    def _interarrival(self) -> float:
        return self.rng.expovariate(self.scenario.demand.payments_per_hour / 3600)

    def advance(self, seconds: int) -> AdvanceReport:
        report = AdvanceReport()
        started = time.monotonic()
        end = self._clock + seconds
        while True:
            t = min(
                self._next_payment, self._next_walk, self._next_outage_check, self._next_sling, end
            )
            with self.net.lock:
                self._clock = t
                self.net.now = int(t)
                if t >= end:
                    self._clock = end
                    self.net.now = int(end)
                    self._confirm_pending()
                    break
                if t == self._next_payment:
                    self._next_payment = t + self._interarrival()
                    self._random_payment(t, report)
                elif t == self._next_walk:
                    self._next_walk = t + self.scenario.competitors.walk_every_s
                    self._walk_competitor_fees()
                elif t == self._next_outage_check:
                    self._next_outage_check = t + 3600
                    self._outages()
                    self._confirm_pending()
                else:
                    self._next_sling = t + self.scenario.sling.attempt_every_s
                    for sling in self.sling.values():
                        report.rebalance_attempts += sling.step(t)
        report.wall_s = time.monotonic() - started
        return report

    def _random_payment(self, t: float, report: AdvanceReport) -> None:
        source = self._external[self.rng.randrange(len(self._external))]
        pick = self.rng.random() * self._cum_weights[-1]
        dest = self._external[bisect.bisect_right(self._cum_weights, pick)]
        if dest == source:
            return
        ok, booked = self.payments.pay(source, dest, self.payments.draw_amount_msat(), t)
        report.payments += 1
        report.succeeded += ok
        report.fleet_forwards += booked

    def _walk_competitor_fees(self) -> None:
        spec = self.scenario.competitors
        for channel in self.net.channels.values():
            if channel.to_node1_msat is not None:
                continue
            for policy in channel.policies.values():
                if policy.enabled and self.rng.random() < spec.walk_fraction:
                    factor = 1 + self.rng.uniform(-spec.walk_step, spec.walk_step)
                    policy.fee_ppm = max(0, round(policy.fee_ppm * factor))
                    policy.last_update = self.net.now
        if spec.undercut_share > 0:
            self._undercut_fleet()

    def _undercut_fleet(self) -> None:
        """Competitors that watch the fleet post just under its fee toward the same peer.

        Which channels watch is a fixed function of the scid (no draw from the market's random
        stream, so enabling it changes nothing else). A watcher never rises above the fee it had
        before it first reacted, so a fleet that prices high lets the market recover.
        """
        spec = self.scenario.competitors
        fleet_fee_ppm: dict[str, int] = {}
        for node in self.net.fleet_nodes():
            for channel in self.net.channels_of(node.pubkey):
                peer = channel.other(node.pubkey)
                if channel.is_normal and self.net.nodes[peer].fleet is None:
                    fee_ppm = channel.policy_from(node.pubkey).fee_ppm
                    fleet_fee_ppm[peer] = min(fee_ppm, fleet_fee_ppm.get(peer, fee_ppm))
        for peer, ours_ppm in sorted(fleet_fee_ppm.items()):
            target_ppm = max(spec.undercut_floor_ppm, int(ours_ppm * (1 - spec.undercut_pct / 100)))
            for channel in self.net.channels_of(peer):
                if channel.to_node1_msat is not None or not _watches(channel.scid, spec):
                    continue
                policy = channel.policy_from(channel.other(peer))
                if not policy.enabled:
                    continue
                own_ppm = self._undercut_own_ppm.setdefault((channel.scid, peer), policy.fee_ppm)
                new_ppm = min(own_ppm, target_ppm)
                if new_ppm != policy.fee_ppm:
                    policy.fee_ppm = new_ppm
                    policy.last_update = self.net.now

    def _outages(self) -> None:
        spec = self.scenario.peers
        rate = spec.outages_per_day / 24
        for pk in self._external:
            if self.rng.random() < rate:
                self.payments.offline_until[pk] = self.net.now + self.rng.expovariate(
                    1 / spec.outage_mean_s
                )
        for node in self.net.fleet_nodes():
            assert node.fleet is not None
            for peer in node.fleet.peers:
                peer_node = self.net.nodes[peer]
                node.fleet.peers[peer] = peer_node.online and (
                    self.payments.offline_until.get(peer, 0) <= self.net.now
                )

    def _confirm_pending(self) -> None:
        changed = False
        while self._pending and self._pending[0][0] <= self.net.now:
            _, scid = self._pending.pop(0)
            channel = self.net.channels.get(scid)
            if channel is not None and channel.state == "CHANNELD_AWAITING_LOCKIN":
                channel.state = "CHANNELD_NORMAL"
                changed = True
        if changed:
            self.graph.rebuild()

    # -- actions the RPC layer calls while holding net.lock ---------------------------------
    def fleet_channel(self, node_pk: str, ref: str) -> list[Channel]:
        """Channels of `node_pk` matching a scid, a peer id, or 'all'."""
        chans = self.net.channels_of(node_pk)
        if ref == "all":
            return [c for c in chans if c.state != "CLOSINGD_COMPLETE"]
        found = [
            c for c in chans if c.scid == ref or c.other(node_pk) == ref or c.channel_id == ref
        ]
        if not found:
            raise SimRpcError(LIGHTNINGD, f"Could not find active channel {ref}")
        return found

    def set_fee(
        self,
        node_pk: str,
        ref: str,
        base_msat: int | None,
        ppm: int | None,
        htlcmin: int | None = None,
        htlcmax: int | None = None,
    ) -> list[Channel]:
        channels = self.fleet_channel(node_pk, ref)
        for channel in channels:
            policy = channel.policy_from(node_pk)
            if base_msat is not None:
                policy.base_fee_msat = base_msat
            if ppm is not None:
                policy.fee_ppm = ppm
            if htlcmin is not None:
                policy.htlc_min_msat = htlcmin
            if htlcmax is not None:
                policy.htlc_max_msat = min(htlcmax, channel.capacity_msat)
            policy.last_update = self.net.now
        return channels

    def connect(self, node_pk: str, peer_pk: str) -> None:
        if peer_pk not in self.net.nodes:
            raise SimRpcError(401, f"Unable to connect, no address known for peer {peer_pk}")
        fleet = self.net.nodes[node_pk].fleet
        assert fleet is not None
        fleet.peers[peer_pk] = True

    def feerates(self) -> dict[str, int]:
        perkw = self.scenario.feerate_perkw
        return {
            "perkw": perkw,
            "open_sat": perkw * 4 * 700 // 1000,
            "close_sat": perkw * 4 * 500 // 1000,
        }

    def fund_channel(
        self, node_pk: str, peer_pk: str, amount_sat: int, feerate_perkw: int | None = None
    ) -> tuple[Channel, str, int]:
        node = self.net.nodes[node_pk]
        fleet = node.fleet
        assert fleet is not None
        if peer_pk not in self.net.nodes or not fleet.peers.get(peer_pk):
            raise SimRpcError(LIGHTNINGD, f"Unknown peer {peer_pk}: connect first")
        perkw = feerate_perkw or self.scenario.feerate_perkw
        fee_sat = perkw * 4 * 700 // 1000
        available = sum(u.amount_msat for u in fleet.utxos if u.status == "confirmed")
        need = (amount_sat + fee_sat) * 1000
        if need > available:
            raise SimRpcError(
                FUND_CANNOT_AFFORD,
                f"Could not afford {amount_sat}sat using all 1 available UTXOs: "
                f"{(available // 1000) - fee_sat}sat available",
            )
        change = available - need
        txid = hashlib.sha256(f"fund:{node_pk}:{peer_pk}:{self.net.now}".encode()).hexdigest()
        spent = [
            (f"{u.txid}:{u.output}", u.amount_msat) for u in fleet.utxos if u.status == "confirmed"
        ]
        fleet.utxos = (
            [Utxo(txid=txid, output=1, amount_msat=change, blockheight=self.net.blockheight)]
            if change
            else []
        )
        n = next(self._scid_counter)
        scid = f"{self.net.blockheight + LOCKIN_BLOCKS}x{500 + n}x0"
        node1, node2 = sorted((node_pk, peer_pk))
        cap = amount_sat * 1000
        mine = Policy(0, 100, cap * 99 // 100, last_update=self.net.now)
        theirs = Policy(1000, 100, cap * 99 // 100, last_update=self.net.now)
        channel = Channel(
            scid=scid,
            node1=node1,
            node2=node2,
            capacity_msat=cap,
            policies={
                0: mine if node_pk == node1 else theirs,
                1: theirs if node_pk == node1 else mine,
            },
            funding_txid=txid,
            funding_outnum=0,
            channel_id=hashlib.sha256(f"cid{txid}".encode()).hexdigest(),
            opened_at=self.net.now,
            to_node1_msat=cap if node_pk == node1 else 0,
            state="CHANNELD_AWAITING_LOCKIN",
            opener_is_node1=node_pk == node1,
        )
        for end in (node_pk, peer_pk):
            if self.net.nodes[end].fleet is not None:
                channel.stats[end] = ChannelStats()
                channel.next_htlc_id[end] = 0
        self.net.channels[scid] = channel
        node.channels.append(scid)
        self.net.nodes[peer_pk].channels.append(scid)
        fleet.books.channel_open(
            channel.channel_id,
            spent,
            cap,
            fee_sat * 1000,
            change,
            txid,
            self.net.blockheight,
            self.net.now,
        )
        self._pending.append((self.net.now + LOCKIN_BLOCKS * 600, scid))
        self._pending.sort()
        return channel, txid, 0

    def close_channel(self, node_pk: str, ref: str) -> dict[str, str]:
        channel = self.fleet_channel(node_pk, ref)[0]
        fleet = self.net.nodes[node_pk].fleet
        assert fleet is not None
        fee_sat = self.scenario.feerate_perkw * 4 * 500 // 1000
        ours = channel.local_msat(node_pk)
        channel.state = "CLOSINGD_COMPLETE"
        channel.closer = "local"
        txid = hashlib.sha256(f"close:{channel.scid}".encode()).hexdigest()
        payout = max(
            0,
            ours - fee_sat * 1000
            if channel.opener_is_node1 == (node_pk == channel.node1)
            else ours,
        )
        if payout:
            fleet.utxos.append(
                Utxo(txid=txid, output=0, amount_msat=payout, blockheight=self.net.blockheight)
            )
        we_opened = channel.opener_is_node1 == (node_pk == channel.node1)
        fleet.books.channel_close(
            channel.channel_id,
            f"{channel.funding_txid}:{channel.funding_outnum}",
            ours,
            fee_sat * 1000 if we_opened else 0,
            payout,
            txid,
            self.net.blockheight,
            self.net.now,
        )
        fleet.closed.append(channel)
        self.graph.rebuild()
        return {"type": "mutual", "txids": [txid], "txs": ["02" + "00" * 60]}

    def set_node_online(self, pk: str, online: bool) -> None:
        self.net.nodes[pk].online = online
        for node in self.net.fleet_nodes():
            assert node.fleet is not None
            if pk in node.fleet.peers:
                node.fleet.peers[pk] = online

    def synthesize_forwards(self, node_pk: str, n: int, seed: int = 0) -> None:
        """Append `n` plausible forwards without routing: bulk history for ingest benchmarks."""
        rng = random.Random(seed)
        fleet = self.net.nodes[node_pk].fleet
        assert fleet is not None
        scids = [c.scid for c in self.net.channels_of(node_pk)]
        start = self.net.now - 365 * 86_400
        step = 365 * 86_400 / max(n, 1)
        base = len(fleet.forwards)
        statuses = ("settled",) * 17 + ("failed", "local_failed", "local_failed")
        for i in range(n):
            out_msat = rng.randrange(1_000_000, 500_000_000)
            fee = 1000 + out_msat * rng.choice((10, 50, 100, 250, 500)) // 1_000_000
            status = statuses[rng.randrange(20)]
            received = round(start + i * step, 3)
            f = Forward(
                created_index=base + i + 1,
                in_channel=scids[i % len(scids)],
                in_htlc_id=i,
                in_msat=out_msat + fee,
                status=status,
                received_time=received,
                out_channel=scids[(i * 7 + 3) % len(scids)],
            )
            if status != "local_failed":
                fleet.forwards_updated_index += 1
                f.updated_index = fleet.forwards_updated_index
                f.out_htlc_id, f.out_msat, f.fee_msat = i, out_msat, fee
                f.resolved_time = received + 1.5
            else:
                f.failcode, f.failreason = 4103, "WIRE_TEMPORARY_CHANNEL_FAILURE"
            fleet.forwards.append(f)
