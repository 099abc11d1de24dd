"""CLN methods rendered from the simulated network, in current units (integer msat)."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from lnsim.rpcactions import FEATURES, ActionMethods
from lnsim.rpcserver import Handler, RawResult
from lnsim.simerrors import INVALID_PARAMS, SimRpcError
from lnsim.simmarket import Market
from lnsim.state import Channel, Forward

PARAMS_ORDER: dict[str, list[str]] = {
    "listpeerchannels": ["id", "short_channel_id", "channel_id"],
    "listforwards": ["status", "in_channel", "out_channel", "index", "start", "limit"],
    "listchannels": ["short_channel_id", "source", "destination"],
    "listnodes": ["id"],
    "listpeers": ["id", "level"],
    "listfunds": ["spent"],
    "setchannel": [
        "id",
        "feebase",
        "feeppm",
        "htlcmin",
        "htlcmax",
        "enforcedelay",
        "ignorefeelimits",
    ],
    "feerates": ["style"],
    "connect": ["id", "host", "port"],
    "fundchannel": ["id", "amount", "feerate", "announce", "minconf", "push_msat"],
    "close": ["id", "unilateraltimeout", "destination"],
    "bkpr-listincome": ["consolidate_fees", "start_time", "end_time"],
    "bkpr-listaccountevents": ["account", "payment_id"],
    "bkpr-channelsapy": ["start_time", "end_time"],
    "wait": ["subsystem", "indexname", "nextvalue"],
    "listconfigs": ["config"],
    "listclosedchannels": ["id"],
    "sling-go": ["scid"],
    "sling-stop": ["scid"],
    "sling-jobsettings": ["scid"],
    "sling-stats": ["scid", "json"],
    "sling-deletejob": ["job", "delete_stats"],
}


def forward_json(f: Forward) -> dict[str, Any]:
    out: dict[str, Any] = {"created_index": f.created_index}
    if f.updated_index is not None:
        out["updated_index"] = f.updated_index
    out.update(in_channel=f.in_channel, in_htlc_id=f.in_htlc_id, in_msat=f.in_msat)
    if f.out_channel is not None:
        out["out_channel"] = f.out_channel
    if f.out_htlc_id is not None:
        out["out_htlc_id"] = f.out_htlc_id
    if f.out_msat is not None:
        out["out_msat"], out["fee_msat"] = f.out_msat, f.fee_msat
    out.update(status=f.status, style="tlv", received_time=f.received_time)
    if f.resolved_time is not None:
        out["resolved_time"] = f.resolved_time
    if f.failcode is not None:
        out["failcode"], out["failreason"] = f.failcode, f.failreason
    return out


class NodeMethods(ActionMethods):
    def __init__(
        self, market: Market, pubkey: str, lightning_dir: str, tick: threading.Condition
    ) -> None:
        self.market, self.net, self.pk, self.dir, self.tick = (
            market,
            market.net,
            pubkey,
            lightning_dir,
            tick,
        )

    def handlers(self) -> dict[str, Handler]:
        sling = self.market.sling[self.pk]
        locked = {
            "getinfo": self.getinfo,
            "listpeerchannels": self.listpeerchannels,
            "listpeers": self.listpeers,
            "listfunds": self.listfunds,
            "listforwards": self.listforwards,
            "listchannels": self.listchannels,
            "listnodes": self.listnodes,
            "setchannel": self.setchannel,
            "feerates": self.feerates,
            "connect": self.connect,
            "fundchannel": self.fundchannel,
            "close": self.close,
            "listclosedchannels": self.listclosedchannels,
            "bkpr-listincome": self.listincome,
            "bkpr-listaccountevents": self.listaccountevents,
            "bkpr-channelsapy": self.channelsapy,
            "listconfigs": self.listconfigs,
            "sling-job": lambda p: sling.job(**p),
            "sling-once": lambda p: sling.once(**p),
            "sling-go": lambda p: sling.go(p.get("scid")),
            "sling-stop": lambda p: sling.stop(p.get("scid")),
            "sling-jobsettings": lambda p: sling.jobsettings(p.get("scid")),
            "sling-stats": lambda p: sling.stats(p.get("scid"), bool(p.get("json", False))),
            "sling-deletejob": lambda p: sling.deletejob(p["job"], bool(p.get("delete_stats"))),
            "sling-version": lambda p: sling.version(),
        }
        out: dict[str, Handler] = {name: self._locked(fn) for name, fn in locked.items()}
        out["wait"] = self.wait
        return out

    def _locked(self, fn: Handler) -> Handler:
        def call(params: dict[str, Any]) -> Any:
            with self.net.lock:
                return fn(params)

        return call

    # -- node ----------------------------------------------------------------------------
    def getinfo(self, _: dict[str, Any]) -> dict[str, Any]:
        chans = self.net.channels_of(self.pk)
        fleet = self.node.fleet
        return {
            "id": self.pk,
            "alias": self.node.alias,
            "color": self.pk[2:8],
            "num_peers": sum(1 for v in fleet.peers.values() if v),
            "num_pending_channels": sum(c.state == "CHANNELD_AWAITING_LOCKIN" for c in chans),
            "num_active_channels": sum(c.is_normal for c in chans),
            "num_inactive_channels": sum(c.state == "CLOSINGD_COMPLETE" for c in chans),
            "address": [],
            "binding": [{"type": "local socket", "socket": "lightning-rpc"}],
            "version": "v26.06-sim",
            "blockheight": self.net.blockheight,
            "network": "bitcoin",
            "fees_collected_msat": fleet.fees_collected_msat,
            "lightning-dir": self.dir,
            "our_features": {"init": FEATURES, "node": FEATURES, "channel": "", "invoice": "02"},
        }

    def _peer_channel(self, c: Channel) -> dict[str, Any]:
        peer = c.other(self.pk)
        local = c.local_msat(self.pk)
        mine, theirs = c.policy_from(self.pk), c.policy_from(peer)
        stats = c.stats.get(self.pk)
        connected = bool(self.node.fleet.peers.get(peer)) and self.net.nodes[peer].online
        spendable = max(0, local - c.reserve_msat)
        receivable = max(0, c.capacity_msat - local - c.reserve_msat)
        ours_opened = c.opener_is_node1 == (self.pk == c.node1)
        out: dict[str, Any] = {
            "peer_id": peer,
            "peer_connected": connected,
            "reestablished": connected,
            "state": c.state,
            "opener": "local" if ours_opened else "remote",
            "features": ["option_static_remotekey", "option_anchors"],
            "short_channel_id": c.scid,
            "direction": c.direction_from(self.pk),
            "channel_id": c.channel_id,
            "funding_txid": c.funding_txid,
            "funding_outnum": c.funding_outnum,
            "private": False,
            "to_us_msat": local,
            "min_to_us_msat": 0,
            "max_to_us_msat": c.capacity_msat,
            "total_msat": c.capacity_msat,
            "fee_base_msat": mine.base_fee_msat,
            "fee_proportional_millionths": mine.fee_ppm,
            "dust_limit_msat": 546_000,
            "our_reserve_msat": c.reserve_msat,
            "their_reserve_msat": c.reserve_msat,
            "spendable_msat": spendable,
            "receivable_msat": receivable,
            "minimum_htlc_in_msat": 0,
            "minimum_htlc_out_msat": mine.htlc_min_msat,
            "maximum_htlc_out_msat": mine.htlc_max_msat,
            "their_to_self_delay": 144,
            "our_to_self_delay": 144,
            "max_accepted_htlcs": 483,
            "updates": {
                "local": {
                    "htlc_minimum_msat": mine.htlc_min_msat,
                    "htlc_maximum_msat": mine.htlc_max_msat,
                    "cltv_expiry_delta": mine.cltv_delta,
                    "fee_base_msat": mine.base_fee_msat,
                    "fee_proportional_millionths": mine.fee_ppm,
                },
                "remote": {
                    "htlc_minimum_msat": theirs.htlc_min_msat,
                    "htlc_maximum_msat": theirs.htlc_max_msat,
                    "cltv_expiry_delta": theirs.cltv_delta,
                    "fee_base_msat": theirs.base_fee_msat,
                    "fee_proportional_millionths": theirs.fee_ppm,
                },
            },
            "status": [],
            "htlcs": [],
        }
        if c.closer:
            out["closer"] = c.closer
        if stats:
            out.update(
                in_payments_offered=stats.in_payments_offered,
                in_offered_msat=stats.in_offered_msat,
                in_payments_fulfilled=stats.in_payments_fulfilled,
                in_fulfilled_msat=stats.in_fulfilled_msat,
                out_payments_offered=stats.out_payments_offered,
                out_offered_msat=stats.out_offered_msat,
                out_payments_fulfilled=stats.out_payments_fulfilled,
                out_fulfilled_msat=stats.out_fulfilled_msat,
            )
        return out

    def listpeerchannels(self, p: dict[str, Any]) -> dict[str, Any]:
        chans = [c for c in self.net.channels_of(self.pk) if c.state != "CLOSINGD_COMPLETE"]
        if p.get("id"):
            chans = [c for c in chans if c.other(self.pk) == p["id"]]
        if p.get("short_channel_id"):
            chans = [c for c in chans if c.scid == p["short_channel_id"]]
        if p.get("channel_id"):
            chans = [c for c in chans if c.channel_id == p["channel_id"]]
        return {"channels": [self._peer_channel(c) for c in chans]}

    def listpeers(self, p: dict[str, Any]) -> dict[str, Any]:
        peers = []
        for peer, connected in sorted(self.node.fleet.peers.items()):
            if p.get("id") and p["id"] != peer:
                continue
            n = sum(1 for c in self.net.channels_of(self.pk) if c.other(self.pk) == peer)
            up = connected and self.net.nodes[peer].online
            entry: dict[str, Any] = {"id": peer, "connected": up, "num_channels": n}
            if up:
                entry.update(netaddr=["127.0.0.1:9735"], features=FEATURES)
            peers.append(entry)
        return {"peers": peers}

    def listfunds(self, _: dict[str, Any]) -> dict[str, Any]:
        fleet = self.node.fleet
        outputs = [
            {
                "txid": u.txid,
                "output": u.output,
                "amount_msat": u.amount_msat,
                "scriptpubkey": "5120" + hashlib.sha256(u.txid.encode()).hexdigest(),
                "status": u.status,
                "blockheight": u.blockheight,
                "reserved": u.reserved,
            }
            for u in fleet.utxos
        ]
        channels = []
        for c in self.net.channels_of(self.pk):
            if c.state == "CLOSINGD_COMPLETE":
                continue
            peer = c.other(self.pk)
            entry = {
                "peer_id": peer,
                "our_amount_msat": c.local_msat(self.pk),
                "amount_msat": c.capacity_msat,
                "funding_txid": c.funding_txid,
                "funding_output": c.funding_outnum,
                "connected": bool(fleet.peers.get(peer)),
                "state": c.state,
                "channel_id": c.channel_id,
            }
            if c.is_normal:
                entry["short_channel_id"] = c.scid
            channels.append(entry)
        return {"outputs": outputs, "channels": channels}

    # -- forwards ------------------------------------------------------------------------
    def listforwards(self, p: dict[str, Any]) -> dict[str, Any]:
        forwards = self.node.fleet.forwards
        index = p.get("index")
        start = int(p.get("start", 0) or 0)
        limit = p.get("limit")
        if index not in (None, "created", "updated"):
            raise SimRpcError(INVALID_PARAMS, "index: should be 'created' or 'updated'")
        if (start or limit is not None) and index is None:
            raise SimRpcError(INVALID_PARAMS, "Can only specify {start} or {limit} with {index}")
        if index == "updated":
            rows = sorted(
                (f for f in forwards if f.updated_index and f.updated_index >= start),
                key=lambda f: f.updated_index or 0,
            )
        else:
            rows = forwards[max(0, start - 1) :] if index == "created" else forwards
        status, in_ch, out_ch = p.get("status"), p.get("in_channel"), p.get("out_channel")
        if status or in_ch or out_ch:
            rows = [
                f
                for f in rows
                if (not status or f.status == status)
                and (not in_ch or f.in_channel == in_ch)
                and (not out_ch or f.out_channel == out_ch)
            ]
        if limit is not None:
            rows = rows[: int(limit)]
        parts = []
        for f in rows:
            if f.json_cache is None:
                f.json_cache = json.dumps(forward_json(f))
            parts.append(f.json_cache)
        return RawResult('{"forwards": [' + ", ".join(parts) + "]}")

    def wait(self, p: dict[str, Any]) -> dict[str, Any]:
        subsystem, indexname = p.get("subsystem"), p.get("indexname")
        if subsystem != "forwards" or indexname not in ("created", "updated", "deleted"):
            raise SimRpcError(INVALID_PARAMS, "wait: only subsystem=forwards is simulated")
        target = int(p["nextvalue"])

        def current() -> int:
            fleet = self.node.fleet
            if indexname == "created":
                return len(fleet.forwards)
            return fleet.forwards_updated_index if indexname == "updated" else 0

        with self.tick:
            self.tick.wait_for(lambda: current() >= target, timeout=60)
            value = current()
        if value < target:
            raise SimRpcError(-1, f"wait: forwards.{indexname} still {value} < {target}")
        return {"subsystem": "forwards", indexname: value}

    # -- gossip --------------------------------------------------------------------------
    def listchannels(self, p: dict[str, Any]) -> dict[str, Any]:
        out = []
        scid, source, dest = p.get("short_channel_id"), p.get("source"), p.get("destination")
        if scid:
            chans = [self.net.channels[scid]] if scid in self.net.channels else []
        elif source or dest:
            chans = (
                self.net.channels_of(source or dest) if (source or dest) in self.net.nodes else []
            )
        else:
            chans = list(self.net.channels.values())
        for c in chans:
            if not c.is_normal:
                continue
            for direction, (src, dst) in enumerate(((c.node1, c.node2), (c.node2, c.node1))):
                if (source and src != source) or (dest and dst != dest):
                    continue
                pol = c.policies[direction]
                out.append(
                    {
                        "source": src,
                        "destination": dst,
                        "short_channel_id": c.scid,
                        "direction": direction,
                        "public": True,
                        "amount_msat": c.capacity_msat,
                        "message_flags": 1,
                        "channel_flags": direction | (0 if pol.enabled else 2),
                        "active": pol.enabled,
                        "last_update": pol.last_update,
                        "base_fee_millisatoshi": pol.base_fee_msat,
                        "fee_per_millionth": pol.fee_ppm,
                        "delay": pol.cltv_delta,
                        "htlc_minimum_msat": pol.htlc_min_msat,
                        "htlc_maximum_msat": pol.htlc_max_msat,
                        "features": "",
                    }
                )
        return {"channels": out}

    def listnodes(self, p: dict[str, Any]) -> dict[str, Any]:
        nodes = (
            [self.net.nodes[p["id"]]]
            if p.get("id") in self.net.nodes
            else ([] if p.get("id") else list(self.net.nodes.values()))
        )
        return {
            "nodes": [
                {
                    "nodeid": n.pubkey,
                    "alias": n.alias,
                    "color": n.pubkey[2:8],
                    "last_timestamp": self.net.now - 3600,
                    "features": FEATURES,
                    "addresses": [],
                }
                for n in nodes
            ]
        }
