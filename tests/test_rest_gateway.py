"""The gateway over clnrest against the simulator's HTTPS server: what a good rune gets, and a
clear, final or retried error for every bad input (rune, TLS, network, proxy, cut body)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lnsim.restserver import RestServer
from lnsim.simfleet import SimFleet
from lnsim.simtls import ensure_certs
from models.runes import restrictions
from models.settings import NodeConfig, RpcConfig
from tasks.gateway import MalformedResponse, NodeError, NodeGateway, NodeUnreachable, RuneRejected

NAME = "nexus-01"
RPC = RpcConfig(retries=2, backoff_base_s=0.01, timeout_s=5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path_factory.mktemp("sim"), rest=True) as fleet:
        fleet.advance(3600)
        yield fleet


@pytest.fixture(autouse=True)
def _clear_faults(fleet: SimFleet):  # type: ignore[no-untyped-def]
    yield
    fleet.faults.clear()


def node(fleet: SimFleet, rune: str | None = None, **overrides: object) -> NodeConfig:
    server = fleet.rest_servers[NAME]
    rune = rune or fleet.create_rune(NAME, restrictions("act"))
    fields: dict[str, object] = {
        "name": NAME,
        "rest_url": server.url,
        "rune_file": fleet.write_rune_file(NAME, rune),
        "ca_cert": server.certs.ca,
    }
    fields.update(overrides)
    return NodeConfig(**fields)  # type: ignore[arg-type]


def gateway(config: NodeConfig) -> NodeGateway:
    return NodeGateway(config, RPC, sleep=lambda s: None)


def test_rest_answers_what_the_socket_answers(fleet: SimFleet) -> None:
    from pyln.client import LightningRpc

    over_rest = gateway(node(fleet)).call("listpeerchannels")
    over_socket = LightningRpc(str(fleet.socket_paths[NAME])).listpeerchannels()
    assert over_rest == over_socket
    assert len(over_rest["channels"]) > 0


def test_a_method_the_rune_forbids_fails_at_once_naming_it_and_the_fix(fleet: SimFleet) -> None:
    gw = gateway(node(fleet, fleet.create_rune(NAME, restrictions("read"))))
    assert gw.call("getinfo")["id"] == fleet.node_ids[NAME]
    before = fleet.call_count(NAME, "setchannel")
    with pytest.raises(RuneRejected) as err:
        gw.call("setchannel", {"id": "1x1x1", "feeppm": 10})
    text = str(err.value)
    assert "does not allow setchannel" in text
    assert "hiveops rune --mode act" in text and "lightning-cli createrune" in text
    assert err.value.code == 1502
    assert gw.calls == 2  # getinfo + one setchannel: no retry
    assert fleet.call_count(NAME, "setchannel") == before  # refused before lightningd saw it


def test_another_nodes_rune_is_refused_as_not_this_nodes(fleet: SimFleet) -> None:
    foreign = fleet.create_rune("nexus-02", restrictions("act"))
    gw = gateway(node(fleet, foreign))
    with pytest.raises(RuneRejected, match="not this node's") as err:
        gw.call("getinfo")
    assert err.value.code == 1501 and gw.calls == 1


def test_a_damaged_rune_is_refused(fleet: SimFleet) -> None:
    good = fleet.create_rune(NAME, restrictions("act"))
    gw = gateway(node(fleet, good[:-6] + "AAAAAA"))
    with pytest.raises(RuneRejected):
        gw.call("getinfo")
    assert gw.calls == 1


def test_a_revoked_rune_is_refused_as_revoked(fleet: SimFleet) -> None:
    rune = fleet.create_rune(NAME, restrictions("act"))
    uid = fleet.runes[NAME].showrunes({"rune": rune})["runes"][0]["unique_id"]
    gw = gateway(node(fleet, rune))
    gw.call("getinfo")
    fleet.runes[NAME].blacklistrune({"start": int(uid)})
    with pytest.raises(RuneRejected, match="revoked") as err:
        gw.call("getinfo")
    assert err.value.code == 1503


def test_an_expired_rune_is_refused_as_expired(fleet: SimFleet) -> None:
    rune = fleet.create_rune(NAME, [*restrictions("act"), [f"time<{fleet.now + 60}"]])
    gw = gateway(node(fleet, rune))
    gw.call("getinfo")
    fleet.advance(120)
    with pytest.raises(RuneRejected, match="has expired"):
        gw.call("getinfo")
    assert gw.calls == 2


def test_no_rune_anywhere_names_the_keys_to_set(fleet: SimFleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = node(fleet, rune_file=None)
    monkeypatch.delenv(config.rune_env, raising=False)
    with pytest.raises(NodeError, match=r"has no rune: set rune_file, or \$HIVEOPS_RUNE_NEXUS_01"):
        gateway(config).call("getinfo")


def test_the_rune_can_come_from_the_environment(fleet: SimFleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = node(fleet, rune_file=None)
    monkeypatch.setenv(config.rune_env, fleet.create_rune(NAME, restrictions("read")))
    assert gateway(config).call("getinfo")["id"] == fleet.node_ids[NAME]


def test_an_unknown_ca_is_refused_and_not_retried(fleet: SimFleet) -> None:
    other_ca = fleet.rest_servers["nexus-02"].certs.ca
    gw = gateway(node(fleet, ca_cert=other_ca))
    with pytest.raises(NodeUnreachable, match="not signed by ca_cert") as err:
        gw.call("getinfo")
    assert "gave up" not in str(err.value) and gw.calls == 1


def test_without_ca_cert_the_self_signed_node_is_refused(fleet: SimFleet) -> None:
    with pytest.raises(NodeUnreachable, match=r"set nodes\[nexus-01\]\.ca_cert"):
        gateway(node(fleet, ca_cert=None)).call("getinfo")


def test_a_certificate_for_another_host_name_is_refused(fleet: SimFleet, tmp_path: Path) -> None:
    certs = ensure_certs(tmp_path / "other-name", hosts=("cln.example.org",))
    server = RestServer(fleet.servers[NAME], fleet.runes[NAME], certs)
    server.start()
    try:
        config = node(fleet, rest_url=server.url, ca_cert=certs.ca)
        with pytest.raises(NodeUnreachable, match="not for that host name"):
            gateway(config).call("getinfo")
    finally:
        server.stop()


def test_connection_refused_is_retried_then_named(fleet: SimFleet) -> None:
    config = node(fleet, rest_url="https://127.0.0.1:9")  # nothing listens on the discard port
    gw = gateway(config)
    refused = r"cannot reach clnrest at https://127\.0\.0\.1:9"
    with pytest.raises(NodeUnreachable, match=refused) as err:
        gw.call("getinfo")
    assert "gave up after 3 attempts" in str(err.value) and gw.calls == 3


def test_a_proxy_answering_html_is_named_and_not_retried(fleet: SimFleet) -> None:
    fleet.faults.set(NAME, "getinfo", html=True)
    gw = gateway(node(fleet))
    with pytest.raises(MalformedResponse, match="text/html, not clnrest's JSON") as err:
        gw.call("getinfo")
    assert "not a proxy" in str(err.value) and gw.calls == 1


def test_a_body_cut_short_is_retried_and_the_retry_succeeds(fleet: SimFleet) -> None:
    fleet.faults.set(NAME, "listfunds", cut_body=True, count=1)
    gw = gateway(node(fleet))
    assert "outputs" in gw.call("listfunds")
    assert gw.calls == 2


def test_a_body_always_cut_short_gives_up_with_a_clear_message(fleet: SimFleet) -> None:
    fleet.faults.set(NAME, "listfunds", cut_body=True)
    with pytest.raises(MalformedResponse, match=r"cut the answer short.*gave up after 3"):
        gateway(node(fleet)).call("listfunds")


def test_lightningd_errors_keep_their_codes_and_retry_rules(fleet: SimFleet) -> None:
    fleet.faults.set(NAME, "getinfo", error_rate=1.0, error_code=-5, count=1)
    gw = gateway(node(fleet))
    assert gw.call("getinfo")["id"] == fleet.node_ids[NAME]
    assert gw.calls == 2  # the transient -5 was retried
    with pytest.raises(NodeError, match=r"setchannel failed \(code -32602\)"):
        gw.call("setchannel", {})
    assert gw.calls == 3


def test_an_unknown_method_is_a_404_with_the_plugin_hint(fleet: SimFleet) -> None:
    rune = fleet.create_rune(NAME, [])
    with pytest.raises(NodeError, match=r"code -32601.*plugin that provides it"):
        gateway(node(fleet, rune)).call("no-such-method")
