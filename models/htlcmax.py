"""max-HTLC decisions: what a channel advertises as its largest HTLC, and why (issue #16).

Payers see capacities and fees, never balances; a depleted channel that advertises its whole
capacity invites HTLCs it must fail (local failures, WIRE_TEMPORARY_CHANNEL_FAILURE). Posting an
htlc_maximum_msat that fits what the channel can send makes them route around it instead.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.frozen import Frozen


class HtlcmaxReason(StrEnum):
    """Stored verbatim: keep the values stable."""

    FITS_SPENDABLE = "fits_spendable"  # a rung of the ladder below what the channel can send
    FREE = "free"  # spendable is plenty: advertise the capacity
    FLEET_CHANNEL = "fleet_channel"  # members' channels are never narrowed
    PASSIVE_POLICY = "passive_policy"  # the operator left this channel alone
    INACTIVE = "inactive"
    UNCHANGED = "unchanged"  # the posted value is already the target
    RATE_LIMITED = "rate_limited"


class HtlcmaxChannel(Frozen):
    """One channel as the max-HTLC step sees it (channel_latest)."""

    scid: str
    peer_id: str
    is_fleet: bool
    usable: bool
    capacity_msat: int = Field(gt=0)
    local_msat: int = Field(ge=0)
    spendable_msat: int | None = Field(default=None, ge=0)
    posted_htlcmax_msat: int | None = Field(default=None, ge=0)
    passive: bool = False  # the fee policy is `passive`: hiveops never touches the channel
    last_change_at: datetime | None = None  # the last applied max-HTLC change


class HtlcmaxDecision(Frozen):
    scid: str
    peer_id: str
    old_htlcmax_msat: int | None
    new_htlcmax_msat: int
    spendable_msat: int
    capacity_msat: int
    reason: HtlcmaxReason
    apply: bool  # a setchannel call is due
    detail: str
