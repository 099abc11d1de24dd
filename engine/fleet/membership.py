"""Fleet membership: configured members, resolved to node ids (pure).

The config says who is in the fleet (`[[nodes]] fleet_member = true`); collect records each
node's id. `fleet_members` in the warehouse is rebuilt from both on every fleet run, and every
loop that needs "is this peer one of ours?" reads it through `fleet.member_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from models.fleet import FleetMember
from models.settings import NodeConfig


def resolve_members(
    nodes: Sequence[NodeConfig],
    known_ids: Mapping[str, str],
    first_seen: Mapping[str, datetime],
    now: datetime,
) -> tuple[list[FleetMember], dict[str, str]]:
    """(members with a node id, {name: problem} for members without one).

    `known_ids`: name -> node id from collect; `first_seen`: node id -> when it joined (the
    earlier of its first collect and its first fleet run).
    """
    members: list[FleetMember] = []
    problems: dict[str, str] = {}
    for node in nodes:
        if not node.fleet_member:
            continue
        node_id = node.node_id or known_ids.get(node.name)
        if node_id is None:
            problems[node.name] = (
                f"fleet member {node.name} has no node id: it has never been collected and "
                f"[[nodes]] gives no node_id; run collect or set node_id in the config"
            )
            continue
        members.append(
            FleetMember(node_id=node_id, name=node.name, first_seen_at=first_seen.get(node_id, now))
        )
    return members, problems
