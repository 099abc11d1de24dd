"""CLN methods that change or report on a node's money: fees, channels, on-chain, bookkeeping."""

from __future__ import annotations

from typing import Any

from lnsim.bkpr_apy import channels_apy
from lnsim.simerrors import INVALID_PARAMS, SimRpcError
from lnsim.simmarket import Market
from lnsim.state import Network, Node

FEATURES = "08a0000a8a5961"


class ActionMethods:
    """Mixed into NodeMethods; expects `market`, `net`, `pk` and `node`."""

    market: Market
    net: Network
    pk: str

    @property
    def node(self) -> Node:
        return self.net.nodes[self.pk]

    # -- actions -------------------------------------------------------------------------
    def setchannel(self, p: dict[str, Any]) -> dict[str, Any]:
        if "id" not in p:
            raise SimRpcError(INVALID_PARAMS, "missing required parameter: id")
        ppm = p.get("feeppm")
        if ppm is not None and (not isinstance(ppm, int) or ppm < 0):
            raise SimRpcError(INVALID_PARAMS, "feeppm: should be an unsigned 32 bit integer")
        htlcmin, htlcmax = _msat(p.get("htlcmin")), _msat(p.get("htlcmax"))
        if htlcmax is not None and htlcmax < (htlcmin or 0):
            raise SimRpcError(INVALID_PARAMS, "htlcmax cannot be less than htlcmin")
        if htlcmax is not None and htlcmax <= 0:
            raise SimRpcError(INVALID_PARAMS, "htlcmax: must be greater than 0")
        chans = self.market.set_fee(
            self.pk,
            str(p["id"]),
            _msat(p.get("feebase")),
            ppm,
            htlcmin,
            htlcmax,
        )
        result = []
        for c in chans:
            pol = c.policy_from(self.pk)
            result.append(
                {
                    "peer_id": c.other(self.pk),
                    "channel_id": c.channel_id,
                    "short_channel_id": c.scid,
                    "fee_base_msat": pol.base_fee_msat,
                    "fee_proportional_millionths": pol.fee_ppm,
                    "ignore_fee_limits": bool(p.get("ignorefeelimits", False)),
                    "minimum_htlc_out_msat": pol.htlc_min_msat,
                    "maximum_htlc_out_msat": pol.htlc_max_msat,
                }
            )
        return {"channels": result}

    def feerates(self, p: dict[str, Any]) -> dict[str, Any]:
        style = p.get("style")
        if style not in ("perkw", "perkb"):
            raise SimRpcError(INVALID_PARAMS, "style: should be 'perkb' or 'perkw'")
        rates = self.market.feerates()
        mult = 1 if style == "perkw" else 4
        rate = rates["perkw"] * mult
        body = {
            "opening": rate,
            "mutual_close": rate,
            "unilateral_close": rate,
            "unilateral_anchor_close": rate,
            "penalty": rate,
            "min_acceptable": 253 * mult,
            "max_acceptable": rate * 10,
            "floor": 253 * mult,
            "estimates": [
                {"blockcount": 2, "feerate": rate, "smoothed_feerate": rate},
                {"blockcount": 6, "feerate": rate, "smoothed_feerate": rate},
            ],
        }
        return {
            style: body,
            "onchain_fee_estimates": {
                "opening_channel_satoshis": rates["open_sat"],
                "mutual_close_satoshis": rates["close_sat"],
                "unilateral_close_satoshis": rates["close_sat"] * 2,
                "htlc_timeout_satoshis": rates["close_sat"],
                "htlc_success_satoshis": rates["close_sat"],
            },
        }

    def connect(self, p: dict[str, Any]) -> dict[str, Any]:
        peer = str(p.get("id", "")).split("@")[0]
        self.market.connect(self.pk, peer)
        return {
            "id": peer,
            "features": FEATURES,
            "direction": "out",
            "address": {"type": "ipv4", "address": "127.0.0.1", "port": 9735},
        }

    def fundchannel(self, p: dict[str, Any]) -> dict[str, Any]:
        amount = p.get("amount")
        if amount in (None, "all"):
            raise SimRpcError(INVALID_PARAMS, "amount: a number of satoshis is required")
        amount_sat = _msat(amount) // 1000 if isinstance(amount, str) else int(amount)
        channel, txid, outnum = self.market.fund_channel(self.pk, str(p["id"]), amount_sat)
        return {
            "tx": "02" + "00" * 80,
            "txid": txid,
            "outnum": outnum,
            "channel_id": channel.channel_id,
            "mindepth": 6,
            "channel_type": {"bits": [12, 22], "names": ["static_remotekey/even", "anchors/even"]},
        }

    def close(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.market.close_channel(self.pk, str(p["id"]))

    def listclosedchannels(self, p: dict[str, Any]) -> dict[str, Any]:
        out = []
        for c in self.node.fleet.closed:
            peer = c.other(self.pk)
            if p.get("id") and p["id"] != peer:
                continue
            local = c.local_msat(self.pk)
            out.append(
                {
                    "peer_id": peer,
                    "channel_id": c.channel_id,
                    "short_channel_id": c.scid,
                    "opener": "local" if c.opener_is_node1 == (self.pk == c.node1) else "remote",
                    "closer": c.closer or "local",
                    "private": False,
                    "total_local_commitments": 1,
                    "total_remote_commitments": 1,
                    "total_htlcs_sent": 0,
                    "funding_txid": c.funding_txid,
                    "funding_outnum": c.funding_outnum,
                    "funding_withheld": False,
                    "leased": False,
                    "total_msat": c.capacity_msat,
                    "final_to_us_msat": local,
                    "min_to_us_msat": 0,
                    "max_to_us_msat": c.capacity_msat,
                    "close_cause": "user",
                }
            )
        return {"closedchannels": out}

    def listincome(self, p: dict[str, Any]) -> dict[str, Any]:
        end = p.get("end_time")
        consolidate = p.get("consolidate_fees", True)
        events = self.node.fleet.books.income(
            int(p.get("start_time", 0) or 0),
            None if end is None else int(end),
            consolidate_fees=consolidate is not False,
        )
        return {"income_events": events}

    def listaccountevents(self, p: dict[str, Any]) -> dict[str, Any]:
        books = self.node.fleet.books
        return {"events": books.account_events(p.get("account"), p.get("payment_id"))}

    def channelsapy(self, p: dict[str, Any]) -> dict[str, Any]:
        end = p.get("end_time")
        books = self.node.fleet.books
        rows = channels_apy(
            books,
            int(p.get("start_time", 0) or 0),
            None if end is None else int(end),
            self.net.blockheight,
            {c.channel_id: c.capacity_msat for c in self.net.channels.values()},
        )
        return {"channels_apy": rows}

    def listconfigs(self, p: dict[str, Any]) -> dict[str, Any]:
        configs = {
            "fee-base": {"value_int": 1000, "source": "default"},
            "fee-per-satoshi": {"value_int": 10, "source": "default"},
            "alias": {"value_str": self.node.alias, "source": "cmdline"},
            "network": {"value_str": "bitcoin", "source": "default"},
        }
        if p.get("config"):
            configs = {k: v for k, v in configs.items() if k == p["config"]}
        return {"configs": configs}


def _msat(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("msat"):
        return int(text[:-4])
    if text.endswith("sat"):
        return int(text[:-3]) * 1000
    return int(text)
