"""Which fee rule governs a channel, and which bounds a dynamic rule may move within (pure).

Resolution is deliberately boring: fleet membership first (nothing overrides a fleet peer's
fee: the audit's two weeks of 5-25 ppm fleet fees came from a global floor that did), then the
most specific unexpired policy (channel > peer > default), then the built-in dynamic default.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from models.fees import DEFAULT_POLICY, FeePolicy, PolicyKind
from models.settings import FeeConfig

_OLDEST = datetime.min.replace(tzinfo=UTC)


def resolve_policy(
    *,
    scid: str,
    peer_id: str,
    is_fleet: bool,
    policies: Iterable[FeePolicy],
    now: datetime,
    default: FeePolicy = DEFAULT_POLICY,
) -> FeePolicy:
    """The policy for one channel: fleet > channel > peer > default; expired policies ignored.

    Within one scope the most recently created policy wins (ties: the later one in `policies`),
    so an operator's newer override replaces an older one without deleting it first.
    """
    if is_fleet:
        return FeePolicy(kind=PolicyKind.FLEET, peer_id=peer_id, note="fleet member")
    channel: list[tuple[datetime, int, FeePolicy]] = []
    peer: list[tuple[datetime, int, FeePolicy]] = []
    fallback: list[tuple[datetime, int, FeePolicy]] = []
    for order, policy in enumerate(policies):
        if not policy.is_active(now):
            continue
        key = (policy.created_at or _OLDEST, order, policy)
        if policy.scid is not None:
            if policy.scid == scid:
                channel.append(key)
        elif policy.peer_id is not None:
            if policy.peer_id == peer_id:
                peer.append(key)
        else:
            fallback.append(key)
    for candidates in (channel, peer, fallback):
        if candidates:
            return max(candidates, key=lambda item: (item[0], item[1]))[2]
    return default


def fee_bounds(config: FeeConfig, policy: FeePolicy) -> tuple[int, int]:
    """[floor, ceiling] ppm for a dynamic channel: the policy's bounds replace the global ones.

    Never call this for fleet channels; the controller does not, and a fleet policy cannot carry
    bounds (FeePolicy refuses them).
    """
    if policy.kind is PolicyKind.FLEET:
        raise ValueError("fleet channels have no fee bounds; they always post fees.fleet_fee_ppm")
    floor_ppm = config.min_fee_ppm if policy.min_fee_ppm is None else policy.min_fee_ppm
    ceiling_ppm = config.max_fee_ppm if policy.max_fee_ppm is None else policy.max_fee_ppm
    if floor_ppm > ceiling_ppm:
        # Only a policy bound can cross a global one (FeeConfig validates its own pair); the
        # operator's explicit per-scope bound wins over the global default it contradicts.
        if policy.max_fee_ppm is not None and policy.min_fee_ppm is None:
            floor_ppm = ceiling_ppm
        else:
            ceiling_ppm = floor_ppm
    return floor_ppm, ceiling_ppm
