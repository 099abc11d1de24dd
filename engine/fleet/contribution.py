"""Contribution per member: uptime, routing for other members, assistance given and received.

Uptime is measured against the collect loop's own cycles (its heartbeats), not a wall-clock
cadence: a cycle counts as up for a member when collect stored its snapshot in that cycle or when
another member saw it connected in that cycle (so a snapshot rejected by the zero-balance guard
is not downtime). Cycles before the member joined the fleet do not count against it.

The contribution ratio is uptime times what the member gives over what it receives, both shrunk
toward each other by `fleet.contribution_prior_msat` so that one forward does not make a ratio of
50 or 0: a member that is always up and gives as much as it takes scores 1, a member that is down
scores 0 whatever it did before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.fleet import Contribution, FleetConfig, FleetMember


@dataclass(frozen=True)
class FleetForward:
    """A settled forward by `node_id` whose incoming or outgoing peer is another member."""

    node_id: str
    in_peer: str | None
    out_peer: str | None
    out_msat: int


@dataclass(frozen=True)
class AssistMove:
    """Liquidity an assistance action moved: `helper_id` gave it, `member_id` received it."""

    member_id: str
    helper_id: str | None
    moved_msat: int


def _second(t: datetime) -> int:
    return int(t.timestamp())


def uptime(
    member: FleetMember,
    cycles: Iterable[datetime],
    seen_up: set[tuple[str, int]],
    window_start: datetime,
) -> tuple[int, int]:
    """(cycles expected, cycles up) for one member since max(window start, joined)."""
    since = max(window_start, member.first_seen_at)
    expected = [c for c in cycles if c >= since]
    up = sum(1 for c in expected if (member.node_id, _second(c)) in seen_up)
    return len(expected), up


def measure_contribution(
    members: Sequence[FleetMember],
    cycles: Sequence[datetime],
    snapshots: Iterable[tuple[str, datetime]],
    sightings: Iterable[tuple[str, datetime]],
    forwards: Iterable[FleetForward],
    moves: Iterable[AssistMove],
    config: FleetConfig,
    now: datetime,
) -> list[Contribution]:
    """`snapshots`: (node_id, taken_at) stored; `sightings`: (peer_id, taken_at) where a member's
    channel to that peer was connected; both matched to cycles to the second."""
    window_start = now - timedelta(seconds=config.contribution_window_s)
    seen_up = {(n, _second(t)) for n, t in snapshots} | {(n, _second(t)) for n, t in sightings}
    ids = {m.node_id for m in members}
    given: dict[str, int] = dict.fromkeys(ids, 0)
    received: dict[str, int] = dict.fromkeys(ids, 0)
    for f in forwards:
        others = {p for p in (f.in_peer, f.out_peer) if p in ids and p != f.node_id}
        if not others or f.node_id not in ids:
            continue
        given[f.node_id] += f.out_msat
        for peer in others:
            received[peer] += f.out_msat
    assist_given: dict[str, int] = dict.fromkeys(ids, 0)
    assist_received: dict[str, int] = dict.fromkeys(ids, 0)
    for m in moves:
        if m.member_id in ids:
            assist_received[m.member_id] += m.moved_msat
        if m.helper_id in ids:
            assist_given[m.helper_id] += m.moved_msat  # type: ignore[index]
    prior = config.contribution_prior_msat
    out = []
    for member in members:
        expected, up = uptime(member, cycles, seen_up, window_start)
        uptime_pct = round(100.0 * up / expected, 2) if expected else None
        gives = given[member.node_id] + assist_given[member.node_id]
        takes = received[member.node_id] + assist_received[member.node_id]
        ratio = (
            round(uptime_pct / 100 * (gives + prior) / (takes + prior), 4)
            if uptime_pct is not None
            else None
        )
        out.append(
            Contribution(
                node_id=member.node_id,
                name=member.name,
                measured_at=now,
                window_start=max(window_start, member.first_seen_at),
                cycles_expected=expected,
                cycles_up=up,
                uptime_pct=uptime_pct,
                forwarded_for_members_msat=given[member.node_id],
                forwarded_by_members_msat=received[member.node_id],
                assist_given_msat=assist_given[member.node_id],
                assist_received_msat=assist_received[member.node_id],
                contribution_ratio=ratio,
            )
        )
    return out


def moves_by_row(
    rows: Mapping[str, tuple[str, str | None]], moved: Mapping[str, int]
) -> list[AssistMove]:
    """Join assistance rows (id -> member, helper) with the msat their attempts moved."""
    return [
        AssistMove(member_id=m, helper_id=h, moved_msat=moved.get(aid, 0))
        for aid, (m, h) in rows.items()
        if moved.get(aid, 0) > 0
    ]
