"""Which of our channels may feed a pull into a destination, and why the others may not (pure).

Structural exclusions (unusable, fleet, a sink itself, nothing to spare) say the node has no
liquidity to move; loop exclusions (same peer as the destination, ping-pong, an opposite job
already running) say it has liquidity but moving it would only burn fees. The planner reports
the second kind by name, because that is the case where a naive rebalancer would have paid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.rebalance.breaker import ping_pong_reason
from engine.rebalance.ev import need_msat, spare_msat
from engine.rebalance.policy import ResolvedMode
from models.rebalance import (
    MSAT_PER_SAT,
    AttemptRecord,
    ChannelClass,
    FlowRole,
    RebalanceChannel,
    RebalanceTuning,
    SkipReason,
)

_LOOP_REASONS = {
    "same_peer": SkipReason.MULTI_CHANNEL_PEER,
    "ping_pong": SkipReason.PING_PONG,
    "opposite_job": SkipReason.NO_SOURCE,
}


@dataclass(frozen=True)
class SourceSelection:
    eligible: tuple[RebalanceChannel, ...]
    structural: Counter[str] = field(default_factory=Counter)
    loops: dict[str, str] = field(default_factory=dict)  # scid → loop kind
    loop_details: tuple[str, ...] = ()

    def skip_reason(self) -> SkipReason:
        """Named loop reason when loops alone stood between the destination and a source."""
        kinds = set(self.loops.values())
        if len(kinds) == 1:
            return _LOOP_REASONS[kinds.pop()]
        return SkipReason.NO_SOURCE

    def describe(self) -> str:
        parts = [f"{count} {why}" for why, count in sorted(self.structural.items())]
        parts += [f"{scid}: {kind}" for scid, kind in sorted(self.loops.items())]
        text = "no channel can feed this pull (" + ("; ".join(parts) or "no other channel") + ")"
        return text + ("; " + " | ".join(self.loop_details) if self.loop_details else "")


def select_sources(
    dest: RebalanceChannel,
    channels: Sequence[RebalanceChannel],
    classes: dict[str, ChannelClass],
    *,
    attempts: Iterable[AttemptRecord],
    busy_scids: set[str],
    now: datetime,
    tuning: RebalanceTuning,
    modes: dict[str, ResolvedMode] | None = None,
) -> SourceSelection:
    """Channels with spare liquidity that may be sling `candidates` for a pull into `dest`;
    `modes` the operators' rebalance policies (a `never` or `sink-only` channel feeds nothing)."""
    history = tuple(attempts)
    min_spare_msat = tuning.min_amount_sat * MSAT_PER_SAT
    eligible: list[RebalanceChannel] = []
    structural: Counter[str] = Counter()
    loops: dict[str, str] = {}
    details: list[str] = []
    for source in sorted(channels, key=lambda c: c.scid):
        if source.scid == dest.scid:
            continue
        mode = (modes or {}).get(source.scid)
        if mode is not None and not mode.mode.may_feed:
            structural["held by rebalance policy"] += 1
            details.append(f"{source.scid}: {mode.describe()}")
        elif not source.usable:
            structural["inactive"] += 1
        elif source.is_fleet and not tuning.fleet_as_source:
            structural["fleet (kept for fleet assistance)"] += 1
        elif classes[source.scid].role is FlowRole.SINK:
            structural["sink (draining itself)"] += 1
        elif spare_msat(source, tuning) < min_spare_msat:
            structural["without spare above the deplete floor"] += 1
        elif source.peer_id == dest.peer_id:
            loops[source.scid] = "same_peer"
            details.append(f"{source.scid} is another channel to the same peer {dest.peer_id}")
        elif source.scid in busy_scids:
            loops[source.scid] = "opposite_job"
            details.append(f"{source.scid} has its own pull running (sling refuses it)")
        else:
            reason = ping_pong_reason(
                source.scid, as_destination=False, attempts=history, now=now, tuning=tuning
            )
            if reason is not None:
                loops[source.scid] = "ping_pong"
                details.append(reason)
            else:
                eligible.append(source)
    return SourceSelection(
        eligible=tuple(eligible), structural=structural, loops=loops, loop_details=tuple(details)
    )


def peer_need(
    dest: RebalanceChannel, channels: Sequence[RebalanceChannel], tuning: RebalanceTuning
) -> tuple[int, tuple[str, list[str]] | None]:
    """What `dest` needs, judged across every channel to its peer (CLN forwards non-strictly,
    so a sibling channel's outbound serves the same demand); a reason when the peer needs none."""
    target = tuning.target_local_share
    need = need_msat(dest, tuning)
    siblings = [c for c in channels if c.peer_id == dest.peer_id and c.scid != dest.scid]
    if not siblings:
        return need, None
    peer_local = dest.local_msat + sum(c.local_msat for c in siblings)
    peer_capacity = dest.capacity_msat + sum(c.capacity_msat for c in siblings)
    peer_need = max(0, int(target * peer_capacity) - peer_local)
    if peer_need > 0:
        return min(need, peer_need), None
    names = [c.scid for c in siblings]
    why = (
        f"peer {dest.peer_id} also has {', '.join(names)}; together "
        f"{peer_local / peer_capacity:.0%} local ≥ target {target:.0%}, and CLN forwards over "
        f"any channel to the peer"
    )
    return 0, (why, names)
