"""Bookkeeper payloads hiveops reads beyond bkpr-listincome (models.cln.IncomeEvent)."""

from __future__ import annotations

from models.cln import ClnModel
from models.msat import Msat


class ChannelApy(ClnModel):
    """One bkpr-channelsapy entry; the APYs are CLN's strings such as "1.2345%"."""

    account: str
    routed_out_msat: Msat
    routed_in_msat: Msat
    lease_fee_paid_msat: Msat = 0
    lease_fee_earned_msat: Msat = 0
    pushed_out_msat: Msat = 0
    pushed_in_msat: Msat = 0
    our_start_balance_msat: Msat
    channel_start_balance_msat: Msat
    fees_out_msat: Msat
    fees_in_msat: Msat = 0
    apy_total: str | None = None
    apy_out: str | None = None
