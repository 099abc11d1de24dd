"""Every response the simulator serves validates against CLN's official schemas."""

from __future__ import annotations

from typing import Any

import pytest
from pyln.client import LightningRpc, RpcError

from lnsim.schema_check import SHIPPED_SCHEMAS, response_errors
from lnsim.simfleet import SimFleet

SCHEMAS = SHIPPED_SCHEMAS
DAY_S = 86_400


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path_factory.mktemp("schemas")) as fleet:
        fleet.advance(4 * DAY_S)
        yield fleet


@pytest.fixture(scope="module")
def rpc(fleet: SimFleet) -> LightningRpc:
    return LightningRpc(str(fleet.socket_paths["nexus-02"]))


def check(method: str, response: Any) -> None:
    errors = response_errors(SCHEMAS, method, response)
    assert not errors, f"{method}: {errors[:5]}"


def peer(rpc: LightningRpc) -> str:
    return rpc.listpeerchannels()["channels"][1]["peer_id"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("getinfo", {}),
        ("listpeerchannels", {}),
        ("listpeers", {}),
        ("listfunds", {}),
        ("listforwards", {}),
        ("listforwards", {"index": "created", "start": 2, "limit": 3}),
        ("listforwards", {"index": "updated", "start": 1}),
        ("listforwards", {"status": "settled"}),
        ("listchannels", {}),
        ("listnodes", {}),
        ("feerates", {"style": "perkw"}),
        ("feerates", {"style": "perkb"}),
        ("bkpr-listincome", {}),
        ("bkpr-listincome", {"consolidate_fees": False, "start_time": 1}),
        ("bkpr-listaccountevents", {}),
        ("bkpr-channelsapy", {}),
        ("listconfigs", {}),
        ("listclosedchannels", {}),
    ],
)
def test_read_methods_match_the_schema(rpc: LightningRpc, method: str, params: dict) -> None:
    response = rpc.call(method, params)
    check(method, response)


def test_bookkeeper_books_every_settled_forward_fee_on_the_outgoing_channel(
    rpc: LightningRpc,
) -> None:
    """CLN's listincome reports a forward's fee once, as `routed` credit on the channel the HTLC
    left by; listaccountevents has both legs with fees_msat."""
    forwards = [f for f in rpc.listforwards(status="settled")["forwards"] if f["fee_msat"]]
    assert forwards
    by_scid = {c["short_channel_id"]: c["channel_id"] for c in rpc.listpeerchannels()["channels"]}
    income = rpc.call("bkpr-listincome")["income_events"]
    routed: dict[str, int] = {}
    for e in income:
        if e["tag"] == "routed":
            routed[e["account"]] = routed.get(e["account"], 0) + e["credit_msat"]
    expected: dict[str, int] = {}
    for f in forwards:
        account = by_scid[f["out_channel"]]
        expected[account] = expected.get(account, 0) + f["fee_msat"]
    assert {k: v for k, v in routed.items() if v} == expected
    legs = [e for e in rpc.call("bkpr-listaccountevents")["events"] if e["tag"] == "routed"]
    assert sum(e["fees_msat"] for e in legs if e["debit_msat"]) == sum(expected.values())
    assert sum(e["fees_msat"] for e in legs if e["credit_msat"]) == sum(expected.values())


def test_listforwards_has_every_status_the_market_produces(rpc: LightningRpc) -> None:
    statuses = {f["status"] for f in rpc.listforwards()["forwards"]}
    assert "settled" in statuses


def test_listchannels_toward_a_peer_matches_the_schema(rpc: LightningRpc) -> None:
    response = rpc.listchannels(destination=peer(rpc))
    assert response["channels"]
    check("listchannels", response)


def test_setchannel_matches_the_schema_and_changes_gossip(rpc: LightningRpc) -> None:
    scid = rpc.listpeerchannels()["channels"][2]["short_channel_id"]
    response = rpc.setchannel(scid, feebase=0, feeppm=321)
    check("setchannel", response)
    gossip = rpc.listchannels(scid)["channels"]
    assert 321 in {c["fee_per_millionth"] for c in gossip}


def test_setchannel_htlcmax_matches_the_schema_and_reaches_gossip(rpc: LightningRpc) -> None:
    channel = rpc.listpeerchannels()["channels"][2]
    scid = channel["short_channel_id"]
    response = rpc.setchannel(scid, htlcmax=123_000_000)
    check("setchannel", response)
    assert response["channels"][0]["maximum_htlc_out_msat"] == 123_000_000
    listed = rpc.listpeerchannels(channel["peer_id"])
    check("listpeerchannels", listed)
    mine = next(c for c in listed["channels"] if c["short_channel_id"] == scid)
    assert mine["maximum_htlc_out_msat"] == 123_000_000
    assert mine["updates"]["local"]["htlc_maximum_msat"] == 123_000_000
    gossip = rpc.listchannels(scid)
    check("listchannels", gossip)
    assert 123_000_000 in {c["htlc_maximum_msat"] for c in gossip["channels"]}
    with pytest.raises(RpcError, match="htlcmax cannot be less than htlcmin"):
        rpc.setchannel(scid, htlcmin=2_000_000, htlcmax=1_000_000)


def test_connect_fundchannel_close_and_wait(fleet: SimFleet, rpc: LightningRpc) -> None:
    target = next(
        pk
        for pk, n in fleet.net.nodes.items()
        if not n.is_fleet and pk not in {c["peer_id"] for c in rpc.listpeerchannels()["channels"]}
    )
    check("connect", rpc.connect(target))
    check("fundchannel", rpc.fundchannel(target, 500_000))
    fleet.advance(2 * 3600)
    opened = [c for c in rpc.listpeerchannels(target)["channels"]]
    assert opened and opened[0]["state"] == "CHANNELD_NORMAL"
    check("close", rpc.close(opened[0]["short_channel_id"]))
    check("listclosedchannels", rpc.listclosedchannels())
    check("bkpr-listincome", rpc.call("bkpr-listincome"))
    account = opened[0]["channel_id"]
    events = rpc.call("bkpr-listaccountevents", {"account": account})
    check("bkpr-listaccountevents", events)
    # bookkeeper's view of the channel's life: opened, its funding fee, closed, its close fee
    tags = [(e["type"], e["tag"]) for e in events["events"]]
    assert ("chain", "channel_open") in tags and ("chain", "channel_close") in tags
    fees = [e for e in rpc.call("bkpr-listincome")["income_events"] if e["account"] == account]
    assert {e["tag"] for e in fees} == {"onchain_fee"} and all(e["debit_msat"] for e in fees)
    check("bkpr-channelsapy", rpc.call("bkpr-channelsapy"))
    created = len(rpc.listforwards()["forwards"])
    check(
        "wait",
        rpc.call("wait", {"subsystem": "forwards", "indexname": "created", "nextvalue": created}),
    )


@pytest.mark.parametrize("fault", ["msat_strings", "drop_optional"])
def test_old_and_minimal_forms_parse_with_our_models(
    fleet: SimFleet, rpc: LightningRpc, fault: str
) -> None:
    from models.cln import GetInfo, ListFunds, PeerChannel
    from models.forwards import forwards_frame

    fleet.faults.set("nexus-02", "*", **{fault: True})
    try:
        info = GetInfo.model_validate(rpc.getinfo())
        channels = [PeerChannel.model_validate(c) for c in rpc.listpeerchannels()["channels"]]
        funds = ListFunds.model_validate(rpc.listfunds())
        page = forwards_frame(rpc.listforwards()["forwards"])
    finally:
        fleet.faults.clear()
    assert info.id == fleet.node_ids["nexus-02"]
    assert all(c.total_msat and c.total_msat > 0 for c in channels)
    assert funds.funded_channel_msat > 0
    assert page.height > 0 and page["in_msat"].min() > 0


def test_sling_methods_match_slings_shapes(fleet: SimFleet, rpc: LightningRpc) -> None:
    channels = rpc.listpeerchannels()["channels"]
    depleted = min(channels, key=lambda c: c["to_us_msat"] / c["total_msat"])
    scid = depleted["short_channel_id"]
    assert rpc.call(
        "sling-job",
        {
            "scid": scid,
            "direction": "pull",
            "amount": 50_000,
            "maxppm": 3000,
            "outppm": 2000,
            "target": 0.3,
        },
    ) == {"result": "success"}
    with pytest.raises(Exception, match="Invalid argument: bogus"):
        rpc.call(
            "sling-job",
            {"scid": scid, "direction": "pull", "amount": 1, "maxppm": 1, "outppm": 1, "bogus": 1},
        )
    settings = rpc.call("sling-jobsettings", {"scid": scid})[scid]
    assert settings["sat_direction"] == "Pull" and settings["amount_msat"] == 50_000_000
    started = rpc.call("sling-go", {"scid": scid})
    assert set(started) == {"tasks_started", "tasks_failed_start:"}
    fleet.advance(3 * 3600)
    summary = rpc.call("sling-stats", {"json": True})
    assert summary and isinstance(summary[0]["rebamount"], str)
    assert summary[0]["status"][0].split(":")[1] in {
        "Rebalancing",
        "Balanced",
        "NoCandidates",
        "NoRoutes",
        "NoCheapRoute",
        "PeerNotReady",
    }
    detail = rpc.call("sling-stats", {"scid": scid, "json": True})
    assert set(detail) == {"successes_in_time_window", "failures_in_time_window"}
    assert rpc.call("sling-stop", {"scid": scid}) == {"stopped_count": 1}
    assert rpc.call("sling-deletejob", {"job": scid}) == {"result": "success"}
    assert rpc.call("sling-version") == {"version": "v4.2.1"}


def test_unknown_method_and_bad_params_use_clns_codes(rpc: LightningRpc) -> None:
    with pytest.raises(Exception, match="-32601"):
        rpc.call("no-such-method")
    with pytest.raises(Exception, match="-32602"):
        rpc.call("feerates", {"style": "perfoo"})


def test_rune_methods_match_the_schema(rpc: LightningRpc) -> None:
    created = rpc.call("createrune", {"restrictions": [["method=getinfo", "method^list"]]})
    check("createrune", created)
    narrowed = rpc.call("createrune", {"rune": created["rune"], "restrictions": "readonly"})
    check("createrune", narrowed)
    assert narrowed["unique_id"] == created["unique_id"]
    check("checkrune", rpc.call("checkrune", {"rune": created["rune"], "method": "getinfo"}))
    check("showrunes", rpc.call("showrunes", {}))
    check("showrunes", rpc.call("showrunes", {"rune": narrowed["rune"]}))
    with pytest.raises(RpcError) as err:
        rpc.call("checkrune", {"rune": created["rune"], "method": "setchannel"})
    assert err.value.error["code"] == 1502
