"""Which rebalance mode an operator set for a channel, and what it forbids (pure).

A channel policy beats a peer policy (the more specific scope wins, as for fee policies);
within a scope the newest wins. No policy is `auto`. The mode is resolved once per run so
every skip names the policy that stood in the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from models.rebalance import RebalanceChannel
from models.rebalance_policy import RebalanceMode, RebalancePolicy

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ResolvedMode:
    mode: RebalanceMode
    policy_id: str | None  # None: no policy, the default `auto`

    def describe(self) -> str:
        where = self.policy_id or "default"
        return f"rebalance policy {self.mode.value} ({where})"


AUTO = ResolvedMode(RebalanceMode.AUTO, None)


def resolve_mode(scid: str, peer_id: str, policies: Iterable[RebalancePolicy]) -> ResolvedMode:
    """The mode for one channel: channel > peer > auto; newest first within a scope."""
    channel: list[tuple[datetime, int, RebalancePolicy]] = []
    peer: list[tuple[datetime, int, RebalancePolicy]] = []
    for order, policy in enumerate(policies):
        key = (policy.created_at or _OLDEST, order, policy)
        if policy.scid is not None:
            if policy.scid == scid:
                channel.append(key)
        elif policy.peer_id == peer_id:
            peer.append(key)
    for candidates in (channel, peer):
        if candidates:
            chosen = max(candidates, key=lambda item: (item[0], item[1]))[2]
            return ResolvedMode(chosen.mode, chosen.policy_id)
    return AUTO


def resolve_modes(
    channels: Sequence[RebalanceChannel], policies: Iterable[RebalancePolicy]
) -> dict[str, ResolvedMode]:
    listed = tuple(policies)
    return {c.scid: resolve_mode(c.scid, c.peer_id, listed) for c in channels}


def contradictions(
    policies: Iterable[RebalancePolicy],
    channel_peers: dict[str, str],
    assistance: Iterable[tuple[str, str | None]],
) -> list[str]:
    """Policies that contradict what the fleet asks of the same channel: a fleet-assistance pull
    into a channel that may not receive, or through a source that may not feed. `assistance` is
    (dest_scid, source_scid) of open requests; `channel_peers` maps scid → peer id."""
    listed = tuple(policies)
    found: list[str] = []
    for dest, source in assistance:
        d = resolve_mode(dest, channel_peers.get(dest, ""), listed)
        if not d.mode.may_receive:
            found.append(
                f"{d.describe()} forbids refilling {dest}, but an open fleet-assistance pull "
                f"targets it: the pull will be skipped; set the channel to auto or sink-only, "
                f"or close the request"
            )
        if source is not None:
            s = resolve_mode(source, channel_peers.get(source, ""), listed)
            if not s.mode.may_feed:
                found.append(
                    f"{s.describe()} forbids draining {source}, but an open fleet-assistance "
                    f"pull is to be fed from it: the pull cannot use it as a source"
                )
    return found
