"""A sling-compatible rebalancer (daywalker90/sling v4.2.1's RPC, quirks included).

Jobs pull liquidity into a channel (or push it out) with circular payments over the simulated
network, one attempt per job every `sling.attempt_every_s` while the job runs, until the target
share is reached. Outputs keep sling's shapes: amounts in sats on input, `rebamount` as a
thousands-separated string, local-time strings, "tasks_failed_start:" with its colon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lnsim.bookkeeper import payment_id
from lnsim.simerrors import INVALID_PARAMS, LIGHTNINGD, SimRpcError
from lnsim.slingstats import detail, summary
from lnsim.state import Channel

if TYPE_CHECKING:
    from lnsim.simmarket import Market

JOB_KEYS = {
    "scid",
    "direction",
    "amount",
    "maxppm",
    "outppm",
    "target",
    "maxhops",
    "candidates",
    "depleteuptopercent",
    "depleteuptoamount",
    "paralleljobs",
}
ONCE_KEYS = (JOB_KEYS - {"target"}) | {"onceamount"}


@dataclass
class Job:
    scid: str
    direction: str  # "pull" | "push"
    amount_sat: int
    maxppm: int
    outppm: int | None = None
    candidates: list[str] | None = None
    target: float = 0.5
    maxhops: int = 8
    depleteuptopercent: float = 0.2
    depleteuptoamount_sat: int = 2_000_000
    paralleljobs: int = 1
    once_left_sat: int | None = None
    status: str = "NotStarted"
    running: bool = False


@dataclass
class Record:
    at: float
    amount_sat: int
    ok: bool
    fee_msat: int = 0
    partner: str | None = None
    reason: str = ""
    node: str | None = None
    hops: int = 0


@dataclass
class Sling:
    market: Market
    pubkey: str
    jobs: dict[str, Job] = field(default_factory=dict)
    records: dict[str, list[Record]] = field(default_factory=dict)

    # -- RPC ------------------------------------------------------------------------------
    def job(self, **kwargs: Any) -> dict[str, str]:
        job = self._parse_job(kwargs, JOB_KEYS)
        job.target = float(kwargs.get("target", 0.5))
        if not 0 <= job.target <= 1:
            raise SimRpcError(INVALID_PARAMS, "target must be between 0 and 1")
        old = self.jobs.get(job.scid)
        if old is not None and old.once_left_sat is not None and old.running:
            raise SimRpcError(LIGHTNINGD, f"{job.scid}: sling-once is running on this channel")
        self.jobs[job.scid] = job
        return {"result": "success"}

    def once(self, **kwargs: Any) -> dict[str, str]:
        if "target" in kwargs:
            raise SimRpcError(INVALID_PARAMS, "Invalid argument: target")
        job = self._parse_job(kwargs, ONCE_KEYS)
        once = int(kwargs.get("onceamount", 0))
        if once <= 0 or once % job.amount_sat:
            raise SimRpcError(INVALID_PARAMS, "onceamount must be a multiple of amount")
        job.once_left_sat, job.running, job.status = once, True, "Rebalancing"
        self.jobs[job.scid] = job
        return {"result": "started"}

    def go(self, scid: str | None = None) -> dict[str, int]:
        jobs = [self.jobs[scid]] if scid in self.jobs else list(self.jobs.values())
        if not jobs:
            raise SimRpcError(LIGHTNINGD, "No jobs found")
        started = 0
        for job in jobs:
            if not job.running:
                job.running, job.status = True, "Rebalancing"
                started += 1
        return {"tasks_started": started, "tasks_failed_start:": 0}

    def stop(self, scid: str | None = None) -> dict[str, int]:
        stopped = 0
        for job in self.jobs.values():
            if (scid is None or job.scid == scid) and job.running:
                job.running, job.status = False, "Stopped"
                stopped += 1
        return {"stopped_count": stopped}

    def deletejob(self, job: str, delete_stats: bool = False) -> dict[str, str]:
        targets = list(self.jobs) if job == "all" else [job]
        for scid in targets:
            if scid not in self.jobs:
                raise SimRpcError(LIGHTNINGD, f"{scid}: job not found")
            del self.jobs[scid]
            if delete_stats:
                self.records.pop(scid, None)
        return {"result": "success"}

    def jobsettings(self, scid: str | None = None) -> dict[str, Any]:
        jobs = [self.jobs[scid]] if scid in self.jobs else [] if scid else self.jobs.values()
        out: dict[str, Any] = {}
        for job in jobs:
            entry: dict[str, Any] = {
                "sat_direction": "Pull" if job.direction == "pull" else "Push",
                "amount_msat": job.amount_sat * 1000,
                "maxppm": job.maxppm,
            }
            if job.outppm is not None:
                entry["outppm"] = job.outppm
            if job.candidates is not None:
                entry["candidates"] = job.candidates
            if job.once_left_sat is None:
                entry["target"] = job.target
            else:
                entry["onceamount_msat"] = job.once_left_sat * 1000
            entry.update(
                maxhops=job.maxhops,
                depleteuptopercent=job.depleteuptopercent,
                depleteuptoamount_msat=job.depleteuptoamount_sat * 1000,
                paralleljobs=job.paralleljobs,
            )
            out[job.scid] = entry
        return out

    def stats(self, scid: str | None = None, json: bool = False) -> Any:
        if not json:
            lines = [f"{s}: {j.status}" for s, j in sorted(self.jobs.items())]
            return {"format-hint": "simple", "result": "\n".join(lines) or "No jobs"}
        if scid is None:
            return [summary(self, s) for s in sorted(set(self.jobs) | set(self.records))]
        return detail(self, scid)

    def version(self) -> dict[str, str]:
        return {"version": "v4.2.1"}

    # -- the clock --------------------------------------------------------------------------
    def step(self, t: float) -> int:
        if not self.market.net.nodes[self.pubkey].online:
            return 0
        attempts = 0
        for job in list(self.jobs.values()):
            if not job.running:
                continue
            channel = self.market.net.channels.get(job.scid)
            if channel is None or not channel.is_normal:
                job.status = "ChanNotNormal"
                continue
            if job.once_left_sat is None and self._at_target(job, channel):
                job.status = "Balanced"
                continue
            for _ in range(job.paralleljobs):
                attempts += 1
                self._attempt(job, channel, t)
                if job.once_left_sat is not None and job.once_left_sat <= 0:
                    job.running, job.status = False, "Stopped"
                    break
        return attempts

    def _at_target(self, job: Job, channel: Channel) -> bool:
        share = channel.local_msat(self.pubkey) / channel.capacity_msat
        return share >= job.target if job.direction == "pull" else 1 - share >= job.target

    def _attempt(self, job: Job, channel: Channel, t: float) -> None:
        """One rebalance: like sling, try the candidates (most spare first) until one has a
        route within maxppm; routes minimise fee (a failed rebalance costs nothing, so sling
        accepts riskier cheap paths than a payer would)."""
        market, me = self.market, self.pubkey
        amount_msat = job.amount_sat * 1000
        candidates = self._candidates(job, channel, amount_msat)
        if not candidates:
            job.status = "NoCandidates"
            self._record(job, Record(t, job.amount_sat, False, reason="NoCandidates"))
            return
        pull = job.direction == "pull"
        fleet_state = market.net.nodes[me].fleet
        assert fleet_state is not None
        max_fee_msat = amount_msat * job.maxppm // 1_000_000
        d = market.scenario.demand
        from lnsim.payments import hop_amounts

        chosen = None
        status = "NoRoutes"
        for candidate in candidates:
            out_ch, in_ch = (candidate, channel) if pull else (channel, candidate)
            first, last = out_ch.other(me), in_ch.other(me)
            if not fleet_state.peers.get(first, False) or not fleet_state.peers.get(last, False):
                status = "PeerNotReady" if status == "NoRoutes" else status
                continue
            inner = market.graph.route(
                first,
                last,
                amount_msat,
                risk_ppm=0,
                hop_ppm=d.hop_ppm,
                avoid_nodes={me},
                excluded={out_ch.scid, in_ch.scid},
            )
            if inner is None or len(inner) + 1 > job.maxhops:
                continue
            hops = [(me, first, out_ch), *inner, (last, me, in_ch)]
            fee_msat = hop_amounts(hops, amount_msat)[0] - amount_msat
            if fee_msat > max_fee_msat:
                status = "NoCheapRoute"
                continue
            chosen = (candidate, hops, fee_msat)
            break
        if chosen is None:
            job.status = status
            self._record(job, Record(t, job.amount_sat, False, reason=status))
            return
        candidate, hops, fee_msat = chosen
        result = market.payments.execute(hops, amount_msat, t)
        job.status = "Rebalancing"
        if result.ok:
            if job.once_left_sat is not None:
                job.once_left_sat -= job.amount_sat
            self._record(
                job,
                Record(
                    t,
                    job.amount_sat,
                    True,
                    fee_msat=fee_msat,
                    partner=candidate.scid,
                    hops=len(hops),
                ),
            )
            fleet = market.net.nodes[me].fleet
            assert fleet is not None
            out_ch, in_ch = (candidate, channel) if pull else (channel, candidate)
            fleet.books.rebalance(
                out_ch.channel_id,
                in_ch.channel_id,
                amount_msat,
                fee_msat,
                int(t),
                payment_id("sling", me, channel.scid, t, len(fleet.books.events)),
            )
        else:
            assert result.failed_at is not None
            node = hops[result.failed_at][0]
            self._record(
                job,
                Record(
                    t,
                    job.amount_sat,
                    False,
                    reason=("WIRE_TEMPORARY_CHANNEL_FAILURE"),
                    node=node,
                    partner=candidate.scid,
                ),
            )

    def _candidates(self, job: Job, channel: Channel, amount_msat: int) -> list[Channel]:
        """Usable counterpart channels, the one with the most liquidity to give first."""
        me, net = self.pubkey, self.market.net
        peer = channel.other(me)
        found: list[tuple[int, str, Channel]] = []
        for other in net.channels_of(me):
            if other.scid == channel.scid or not other.is_normal or other.other(me) == peer:
                continue
            if job.candidates is not None and other.scid not in job.candidates:
                continue
            ppm = other.policy_from(me).fee_ppm
            if job.outppm is not None and (
                ppm > job.outppm if job.direction == "pull" else ppm < job.outppm
            ):
                continue
            cap = other.capacity_msat
            floor = max(
                amount_msat + 10_000_000,
                min(int(job.depleteuptopercent * cap), job.depleteuptoamount_sat * 1000),
            )
            side = other.local_msat(me) if job.direction == "pull" else cap - other.local_msat(me)
            if side - floor >= 0:
                found.append((-side, other.scid, other))
        return [c for _, _, c in sorted(found)]

    def _record(self, job: Job, record: Record) -> None:
        self.records.setdefault(job.scid, []).append(record)

    # -- parsing ----------------------------------------------------------------------------
    def _parse_job(self, kwargs: dict[str, Any], allowed: set[str]) -> Job:
        for key in kwargs:
            if key not in allowed:
                raise SimRpcError(INVALID_PARAMS, f"Invalid argument: {key}")
        for key in ("scid", "direction", "amount", "maxppm"):
            if key not in kwargs:
                raise SimRpcError(INVALID_PARAMS, f"Missing argument: {key}")
        if "outppm" not in kwargs and "candidates" not in kwargs:
            raise SimRpcError(INVALID_PARAMS, "Must provide either outppm or candidates")
        scid, direction = str(kwargs["scid"]), str(kwargs["direction"])
        channel = self.market.net.channels.get(scid)
        if channel is None or self.pubkey not in (channel.node1, channel.node2):
            raise SimRpcError(LIGHTNINGD, f"{scid}: channel not found")
        if not channel.is_normal:
            raise SimRpcError(LIGHTNINGD, f"{scid}: channel is not in state CHANNELD_NORMAL")
        if direction not in ("pull", "push"):
            raise SimRpcError(INVALID_PARAMS, "direction must be pull or push")
        amount = int(kwargs["amount"])
        if amount <= 0:
            raise SimRpcError(INVALID_PARAMS, "amount must be greater than 0")
        maxhops = int(kwargs.get("maxhops", 8))
        if maxhops < 2:
            raise SimRpcError(INVALID_PARAMS, "maxhops must be at least 2")
        return Job(
            scid=scid,
            direction=direction,
            amount_sat=amount,
            maxppm=int(kwargs["maxppm"]),
            outppm=int(kwargs["outppm"]) if "outppm" in kwargs else None,
            candidates=list(kwargs["candidates"]) if "candidates" in kwargs else None,
            maxhops=maxhops,
            depleteuptopercent=float(kwargs.get("depleteuptopercent", 0.2)),
            depleteuptoamount_sat=int(kwargs.get("depleteuptoamount", 2_000_000)),
            paralleljobs=int(kwargs.get("paralleljobs", 1)),
        )
