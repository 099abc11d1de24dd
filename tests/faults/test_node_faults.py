"""Node-side faults against `collect`: one case per way a lightningd can answer badly.

Every case starts from a warehouse a clean run filled, while the node has since gained forwards.
The faulty run must end with a specific error naming the node and method (or complete, with a
logged skip where the fault is harmless), must not lose or duplicate a stored row, and the run
after the fault clears must leave exactly the rows a clean run into a fresh warehouse stores.
The faulty node is `FaultProxy`, a real JSON-RPC server on a unix socket in front of the
simulator, so pyln-client and the gateway are exercised as against a real node.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.collect import collect
from flows.common import LoopFailed
from tests.faults.harness import (
    RPC,
    RPC_FAST_TIMEOUT,
    RPC_PATIENT,
    T1,
    T2,
    World,
    assert_kept,
    at,
    copy_warehouse,
    dump,
    no_traceback,
    write_config,
)
from tests.faults.nodeproxy import (
    Action,
    Call,
    CutHalfway,
    ErrorAnswer,
    FaultProxy,
    Hang,
    Raw,
    Rewrite,
)

# -- how a node misbehaves ---------------------------------------------------------------------


def on(method: str, action: Action, *, first: int | None = None) -> Callable[[Call], Action]:
    """`action` for calls of `method` (the first `first` of them only, if given)."""

    def rule(call: Call) -> Action:
        if call.method == method and (first is None or call.n < first):
            return action
        return None

    return rule


def rewrite(method: str, change: Callable[[Any, dict[str, Any]], Any]) -> Callable[[Call], Action]:
    return on(method, Rewrite(result=change))


def msat_strings(value: Any) -> Any:
    """Amounts the way CLN rendered them before v23.05: "123msat" strings."""
    if isinstance(value, dict):
        return {
            k: f"{v}msat" if k.endswith("_msat") and type(v) is int else msat_strings(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [msat_strings(v) for v in value]
    return value


def all_methods(change: Callable[[Any, dict[str, Any]], Any]) -> Callable[[Call], Action]:
    return lambda call: Rewrite(result=change)


OPTIONAL = {
    "getinfo": ("alias", "version", "blockheight", "num_peers", "fees_collected_msat", "network"),
    "listpeerchannels": (
        "spendable_msat",
        "receivable_msat",
        "our_reserve_msat",
        "opener",
        "private",
        "minimum_htlc_out_msat",
        "maximum_htlc_out_msat",
        "in_payments_fulfilled",
        "in_fulfilled_msat",
        "out_payments_fulfilled",
        "out_fulfilled_msat",
        "channel_id",
        "updates",
        "alias",
    ),
    "listforwards": ("style", "in_htlc_id", "out_htlc_id", "failreason", "failcode"),
    "listfunds": ("reserved", "connected", "channel_id"),
    "listchannels": ("delay", "htlc_minimum_msat", "htlc_maximum_msat", "public"),
}


def drop_optional(result: Any, params: dict[str, Any], *, method: str) -> Any:
    keys = OPTIONAL.get(method, ())

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in keys}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(result)


def optional_absent(call: Call) -> Action:
    return Rewrite(result=lambda r, p: drop_optional(r, p, method=call.method))


def without_limit(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "limit"}


def from_the_start(params: dict[str, Any]) -> dict[str, Any]:
    """A node that ignores `start` and `limit`: every page is its whole history."""
    return {"index": params.get("index", "created")} if "index" in params else params


def unopened_channels(result: Any, params: dict[str, Any]) -> Any:
    """Channels without a short channel id (opening) and in closing and onchain states."""
    channels = list(result["channels"])
    template = dict(channels[0])
    for i, state in enumerate(("CHANNELD_AWAITING_LOCKIN", "DUALOPEND_AWAITING_LOCKIN")):
        extra = {**template, "state": state, "peer_id": "02" + f"{i:02x}" * 32}
        extra.pop("short_channel_id", None)
        channels.append(extra)
    for state in ("CLOSINGD_SIGEXCHANGE", "ONCHAIN", "FUNDING_SPEND_SEEN"):
        extra = {**template, "state": state, "peer_id": "03" + "ab" * 32}
        extra.pop("short_channel_id", None)
        extra.pop("to_us_msat", None)
        channels.append(extra)
    return {**result, "channels": channels}


def no_channels(result: Any, params: dict[str, Any]) -> Any:
    return {**result, "channels": []}


def zero_balances(result: Any, params: dict[str, Any]) -> Any:
    zero = ("to_us_msat", "total_msat", "spendable_msat", "receivable_msat")
    return {
        **result,
        "channels": [{**c, **{k: 0 for k in zero if k in c}} for c in result["channels"]],
    }


RESET_BY = 200  # the node's indexes restarted 200 forwards ago (a restored or replaced database)


def reset_request(params: dict[str, Any]) -> dict[str, Any]:
    return (
        {**params, "start": int(params.get("start", 0)) + RESET_BY} if "start" in params else params
    )


def reset_result(result: Any, params: dict[str, Any]) -> Any:
    rows = []
    for f in result["forwards"]:
        f = dict(f)
        f["created_index"] -= RESET_BY
        if f.get("updated_index"):
            f["updated_index"] = max(1, f["updated_index"] - RESET_BY)
        if f["created_index"] > 0:
            rows.append(f)
    return {"forwards": rows}


def index_reset(call: Call) -> Action:
    if call.method == "listforwards":
        return Rewrite(result=reset_result, request=reset_request)
    return None


def no_created_index(result: Any, params: dict[str, Any]) -> Any:
    """A node older than v23.11: listforwards has no created_index (and ignores start)."""
    return {
        "forwards": [
            {k: v for k, v in f.items() if k != "created_index"} for f in result["forwards"]
        ]
    }


def fee_missing(result: Any, params: dict[str, Any]) -> Any:
    """fee_msat absent on settled forwards (it is in - out)."""
    return {
        "forwards": [{k: v for k, v in f.items() if k != "fee_msat"} for f in result["forwards"]]
    }


def in_msat_missing(result: Any, params: dict[str, Any]) -> Any:
    rows = [dict(f) for f in result["forwards"]]
    if rows:
        rows[0].pop("in_msat")
    return {"forwards": rows}


def repeated_rows(result: Any, params: dict[str, Any]) -> Any:
    return {"forwards": result["forwards"] + result["forwards"][:7]}


def wrong_type(result: Any, params: dict[str, Any]) -> Any:
    channels = [dict(c) for c in result["channels"]]
    channels[0]["total_msat"] = "a lot"
    return {**result, "channels": channels}


def hostile_alias(result: Any, params: dict[str, Any]) -> Any:
    return {**result, "alias": "<script>alert(1)</script>|**x**\x1b[31m\x00\n# boom"}


def restart_once(world_proxy: list[FaultProxy]) -> Callable[[Call], Action]:
    def rule(call: Call) -> Action:
        if call.method == "listpeerchannels" and call.n == 0:
            world_proxy[0].restart(0.2)
            return Hang(0)
        return None

    return rule


@dataclass(frozen=True)
class Case:
    id: str
    rule: Callable[[Call], Action] | str
    fails: str | None = None  # the LoopFailed message must match this
    logged: str | None = None  # for runs that complete: a log line that says what was skipped
    rpc: str = RPC
    omits: bool = False  # the node withholds optional columns: compare the rest


# What a forward is, whatever optional columns a node leaves out: node, index, channels,
# amounts, status, times (harness.OBSERVED's column order).
ESSENTIAL = (0, 1, 2, 3, 4, 7, 8, 9, 10, 13, 14)


def essential(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(r[i] for i in ESSENTIAL) for r in rows]


CASES = [
    Case(
        "busy_then_answers",
        on("listforwards", ErrorAnswer(-32603, "busy"), first=2),
        logged=r"listforwards failed \(code -32603\): busy; retrying",
    ),
    Case(
        "shutting_down",
        on("getinfo", ErrorAnswer(-5, "lightningd is shutting down")),
        fails=r"node nexus-02: getinfo failed \(code -5\): lightningd is shutting down "
        r"\(gave up after 3 attempts\)",
    ),
    Case(
        "plugin_died_then_answers",
        on("listfunds", ErrorAnswer(-4, "plugin terminated"), first=1),
        logged=r"listfunds failed \(code -4\)",
    ),
    Case(
        "socket_cut_halfway_once",
        on("listforwards", CutHalfway(), first=1),
        logged=r"nexus-02: listforwards failed: connection lost",
    ),
    Case(
        "socket_cut_halfway_always",
        on("listpeerchannels", CutHalfway()),
        fails=r"node nexus-02: listpeerchannels failed: connection lost.*gave up after 3",
    ),
    Case(
        "call_never_answers",
        on("listforwards", Hang()),
        fails=r"node nexus-02: listforwards failed: no answer within 0.5s \(rpc.timeout_s\)",
        rpc=RPC_FAST_TIMEOUT,
    ),
    Case("msat_strings", all_methods(lambda r, p: msat_strings(r))),
    Case("optional_fields_absent", optional_absent, omits=True),
    Case("fee_msat_absent", rewrite("listforwards", fee_missing)),
    Case(
        "required_amount_missing",
        rewrite("listforwards", in_msat_missing),
        fails=r"node nexus-02: listforwards failed: .*created_index=\d+ has no 'in_msat'",
    ),
    Case(
        "amount_of_wrong_type",
        rewrite("listpeerchannels", wrong_type),
        fails=r"node nexus-02: listpeerchannels failed: response does not match the expected "
        r"shape: total_msat: Value error, not an msat amount: 'a lot'",
    ),
    Case("pagination_ignores_limit", on("listforwards", Rewrite(request=without_limit))),
    Case(
        "pagination_ignores_start_and_limit",
        on("listforwards", Rewrite(request=from_the_start)),
        logged=r"nexus-02: listforwards ignores 'start'",
    ),
    Case("repeated_rows_in_a_page", rewrite("listforwards", repeated_rows)),
    Case("channels_without_scid", rewrite("listpeerchannels", unopened_channels)),
    Case(
        "no_channels_but_funded",
        rewrite("listpeerchannels", no_channels),
        fails=r"node nexus-02: snapshot rejected, not stored: listpeerchannels shows no normal "
        r"channel while listfunds shows \d+ funded",
    ),
    Case(
        "zero_balances",
        rewrite("listpeerchannels", zero_balances),
        fails=r"node nexus-02: snapshot rejected, not stored: listpeerchannels claims zero",
    ),
    Case(
        "restarted_between_calls",
        "restart",
        rpc=RPC_PATIENT,
        logged=r"nexus-02: listpeerchannels failed: .*retrying",
    ),
    Case(
        "indexes_reset",
        index_reset,
        fails=r"node nexus-02: listforwards index reset: .*created_index",
    ),
    Case(
        "no_created_index_before_v23_11",
        rewrite("listforwards", no_created_index),
        fails=r"node nexus-02: listforwards failed: .*no 'created_index'.*v23.11",
    ),
    Case(
        "method_missing_bookkeeper",
        on("bkpr-listincome", ErrorAnswer(-32601, "Unknown command 'bkpr-listincome'")),
        logged=r"nexus-02: bookkeeper not available; on-chain costs not collected",
    ),
    Case(
        "method_missing_listpeerchannels",
        on("listpeerchannels", ErrorAnswer(-32601, "Unknown command 'listpeerchannels'")),
        fails=r"node nexus-02: listpeerchannels failed \(code -32601\): Unknown command.*v23.02",
    ),
    Case(
        "malformed_json",
        on("getinfo", Raw(b'{"jsonrpc": "2.0", "id": 0, "result": {no}\n\n')),
        fails=r"node nexus-02: getinfo failed: malformed response",
    ),
    Case("hostile_alias", rewrite("getinfo", hostile_alias)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_node_fault(
    world: World, case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, fleet = world.proxy, world.fleet
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", fleet, proxy.path, wh, case.rpc)

    if case.rule == "restart":
        proxy.set(restart_once([proxy]))
    else:
        proxy.set(case.rule)  # type: ignore[arg-type]
    proxy.calls.clear()
    caplog.set_level(logging.INFO)
    try:
        if case.fails:
            with pytest.raises(LoopFailed) as failed:
                collect(config_path=str(cfg), now=T1)
            message = str(failed.value)
            no_traceback(message)
            assert re.search(case.fails, message), message
        else:
            collect(config_path=str(cfg), now=T1)
            if case.logged:
                assert re.search(case.logged, caplog.text), caplog.text[-3000:]
    finally:
        proxy.clear()

    during = dump(wh)
    assert_kept(before, during)
    if not case.fails:  # a harmless fault: the run stored what a clean run stores
        project = essential if case.omits else list
        assert project(during["forwards"]) == project(world.reference["forwards"])

    collect(config_path=str(cfg), now=T2)
    after = dump(wh)
    assert_kept(during, after)
    ref = world.reference
    project = essential if case.omits else list
    assert project(after["forwards"]) == project(ref["forwards"])
    assert after["onchain_costs"] == ref["onchain_costs"]
    for table in ("node_snapshots", "channel_snapshots"):
        taken = ref[table][0][1]
        assert at(after[table], 1, taken) == ref[table], table


HOSTILE = "<img src=x onerror=alert(1)>|**bold**\x1b[31m\x00\n## not a heading\r\x7f"


def hostile_peer(result: Any, params: dict[str, Any]) -> Any:
    channels = [dict(c) for c in result["channels"]]
    channels[0]["peer_id"] = HOSTILE
    channels[0]["alias"] = HOSTILE
    return {**result, "channels": channels}


def test_hostile_node_text_leaves_the_report_intact(world: World, tmp_path: Path) -> None:
    """A node that puts HTML, markdown, control characters and newlines in a peer id and an
    alias: collect stores them as data, the report (file and Prefect artifact) renders them as
    inert text, with the same sections as a report without them."""
    from flows.report import report

    def headings(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if line.startswith("#")]

    markdowns = []
    for hostile in (False, True):
        wh = copy_warehouse(world.baseline, tmp_path / f"w{hostile}.duckdb")
        cfg = write_config(tmp_path / f"h{hostile}.toml", world.fleet, world.proxy.path, wh, RPC)
        if hostile:
            world.proxy.set(
                lambda call: (
                    Rewrite(result=hostile_alias)
                    if call.method == "getinfo"
                    else Rewrite(result=hostile_peer)
                    if call.method == "listpeerchannels"
                    else None
                )
            )
        try:
            collect(config_path=str(cfg), now=T1)
        finally:
            world.proxy.clear()
        out = report(config_path=str(cfg), now=T1)
        markdowns.append(Path(out["markdown"]).read_text())
    from prefect.artifacts import Artifact

    from tasks.report import ARTIFACT_KEY

    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None
    # The artifact is the report with its charts inlined as data URIs; the text is the same.
    artifact_md = re.sub(r"\(data:image/png;base64,[^)]*\)", "", str(artifact.data))
    assert artifact_md == re.sub(r"\(charts?/[^)]*\.png\)|\([^)\s]*\.png\)", "", markdowns[1])
    clean, hostile_md = markdowns
    assert headings(clean)[:3] == headings(hostile_md)[:3]
    for text in (hostile_md, artifact_md):
        assert not re.search(r"^\s*#+ not a heading", text, re.MULTILINE)
        for bad in ("<img", "<script", "\x1b", "\x00", "\x7f", "\r"):
            assert bad not in text
