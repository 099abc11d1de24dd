"""CLN JSON-RPC payloads parsed once at the gateway.

Tolerant on input (old "123msat" strings, missing optional fields, unknown extra fields), strict
on what we rely on: a payload missing a required field fails validation with the field's name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.msat import Msat

# The lightningd release that introduced each built-in method hiveops calls (an unknown-command
# answer for one of these means the node is too old, not that a plugin is missing).
METHOD_SINCE = {
    "listpeerchannels": "v23.02",
    "setchannel": "v0.11",
    "listclosedchannels": "v23.05",
}


class ClnModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def field_filter(model: type[ClnModel]) -> dict[str, bool]:
    """A CLN `filter` asking for exactly the fields `model` reads: listpeerchannels entries
    carry HTLC lists, feature bits and state histories we never use."""
    return {name: True for name in model.model_fields}


class GetInfo(ClnModel):
    id: str
    alias: str = ""
    version: str = ""
    blockheight: int = 0
    network: str = "bitcoin"
    num_peers: int = 0
    num_active_channels: int = 0
    num_inactive_channels: int = 0
    num_pending_channels: int = 0
    fees_collected_msat: Msat = 0


class PeerChannel(ClnModel):
    """One entry of listpeerchannels; balances are None when the node did not report them."""

    peer_id: str
    peer_connected: bool
    state: str
    short_channel_id: str | None = None
    channel_id: str | None = None
    opener: str | None = None
    private: bool = False
    total_msat: Msat | None = None
    to_us_msat: Msat | None = None
    spendable_msat: Msat | None = None
    receivable_msat: Msat | None = None
    our_reserve_msat: Msat | None = None
    fee_base_msat: Msat | None = None
    fee_proportional_millionths: int | None = None
    minimum_htlc_out_msat: Msat | None = None
    maximum_htlc_out_msat: Msat | None = None
    in_payments_fulfilled: int | None = None
    in_fulfilled_msat: Msat | None = None
    out_payments_fulfilled: int | None = None
    out_fulfilled_msat: Msat | None = None


class FundsOutput(ClnModel):
    txid: str
    output: int
    amount_msat: Msat
    status: str
    reserved: bool = False


class FundsChannel(ClnModel):
    peer_id: str
    our_amount_msat: Msat
    amount_msat: Msat
    state: str
    connected: bool = False
    short_channel_id: str | None = None
    channel_id: str | None = None


class ListFunds(ClnModel):
    outputs: list[FundsOutput] = Field(default_factory=list)
    channels: list[FundsChannel] = Field(default_factory=list)

    @property
    def onchain_confirmed_msat(self) -> int:
        return sum(
            o.amount_msat for o in self.outputs if o.status == "confirmed" and not o.reserved
        )

    @property
    def funded_channel_msat(self) -> int:
        """Our balance in channels listfunds calls funded (normal, not closing)."""
        return sum(c.our_amount_msat for c in self.channels if c.state == "CHANNELD_NORMAL")


class GossipChannel(ClnModel):
    """One direction of a channel from listchannels."""

    source: str
    destination: str
    short_channel_id: str
    direction: int
    amount_msat: Msat
    active: bool
    last_update: int
    base_fee_millisatoshi: int
    fee_per_millionth: int
    delay: int = 0
    htlc_minimum_msat: Msat = 0
    htlc_maximum_msat: Msat | None = None
    public: bool = True


class IncomeEvent(ClnModel):
    account: str
    tag: str
    credit_msat: Msat
    debit_msat: Msat
    currency: str = "bc"
    timestamp: int
    description: str | None = None
    outpoint: str | None = None
    txid: str | None = None
    payment_id: str | None = None


class SetChannelResult(ClnModel):
    peer_id: str
    channel_id: str
    short_channel_id: str | None = None
    fee_base_msat: Msat
    fee_proportional_millionths: int
