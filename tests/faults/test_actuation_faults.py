"""Actuation-side faults: the node refuses a fee change, applies it without answering, or the run
dies between the node applying it and the warehouse recording it. Whatever happened, every fee
change on the node has exactly one `applied` row, none is applied twice, and the run that
follows the fault leaves the node where a clean run leaves it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyln.client import LightningRpc

from flows.collect import collect
from flows.common import LoopFailed
from flows.fees import fees
from tests.faults.harness import NODE, no_traceback
from tests.faults.nodeproxy import (
    Action,
    AnswerLost,
    ErrorAnswer,
    FaultProxy,
    KillClient,
)
from warehouse import db

ROOT = Path(__file__).resolve().parents[2]
HOUR_S = 3600
RPC = "[rpc]\nretries = 1\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\ntimeout_s = 2\n"


class Node:
    def __init__(self, fleet: Any, proxy: FaultProxy, tmp: Path) -> None:
        self.fleet, self.proxy = fleet, proxy
        self.wh = tmp / "w.duckdb"
        self.config = tmp / "hiveops.toml"
        self.config.write_text(
            f'warehouse_path = "{self.wh}"\n[[nodes]]\nname = "{NODE}"\n'
            f'rpc_socket = "{proxy.path}"\nnode_id = "{fleet.node_ids[NODE]}"\n'
            "[fees]\nmin_fee_ppm = 25\n" + RPC
        )
        self.rpc = LightningRpc(str(fleet.socket_paths[NODE]))
        # A fleet channel at the audit's floor: the first fees run must set it to 0/0.
        self.rpc.setchannel(fleet.node_ids["nexus-03"], feebase=1000, feeppm=25)

    def fees_on_node(self) -> dict[str, tuple[int, int]]:
        return {
            c["short_channel_id"]: (c["fee_base_msat"], c["fee_proportional_millionths"])
            for c in self.rpc.listpeerchannels()["channels"]
        }

    def setchannel_scids(self, since: int) -> list[str]:
        return [c.params["id"] for c in self.proxy.log[since:] if c.method == "setchannel"]

    def changes(self) -> list[tuple[str, str, int, int, str | None]]:
        with db.reader(self.wh) as con:
            return con.execute(
                "SELECT scid, status, new_base_fee_msat, new_fee_ppm, error FROM fee_changes "
                "ORDER BY changed_at, scid"
            ).fetchall()

    def cycle(self, now: int) -> dict[str, Any]:
        collect(config_path=str(self.config), now=now)
        return fees(config_path=str(self.config), now=now)


@pytest.fixture
def node(tmp_path: Path, prefect_harness: None) -> Iterator[Node]:
    from lnsim.simfleet import SimFleet

    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        (tmp_path / "proxy").mkdir()
        with FaultProxy(fleet.socket_paths[NODE], tmp_path / "proxy" / "rpc") as proxy:
            yield Node(fleet, proxy, tmp_path)


def on_setchannel(action: Action) -> Any:
    return lambda call: action if call.method == "setchannel" else None


def assert_each_change_once(node: Node) -> None:
    """Every applied row is on the node, and no channel got the same change twice."""
    on_node = node.fees_on_node()
    applied = [(s, b, p) for s, st, b, p, _ in node.changes() if st == "applied"]
    assert len(applied) == len(set(applied)), f"a change recorded twice: {applied}"
    latest: dict[str, tuple[int, int]] = {}
    for scid, base, ppm in applied:
        latest[scid] = (base, ppm)
    for scid, fee in latest.items():
        assert on_node[scid] == fee, scid
    assert not [c for c in node.changes() if c[1] == "pending"]


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [
        pytest.param(
            on_setchannel(ErrorAnswer(-1, "Channel is in state CHANNELD_SHUTTING_DOWN")),
            "failed",
            "CHANNELD_SHUTTING_DOWN",
            id="setchannel_refused",
        ),
        pytest.param(
            on_setchannel(AnswerLost()),
            "pending",
            "outcome unknown, the next run reconciles it",
            id="setchannel_applied_answer_lost",
        ),
    ],
)
def test_setchannel_fault(node: Node, fault: Any, status: str, says: str) -> None:
    now = node.fleet.now
    fleet_scid = next(s for s, fee in node.fees_on_node().items() if fee == (1000, 25))
    node.proxy.set(fault)
    with pytest.raises(LoopFailed) as failed:
        node.cycle(now)
    node.proxy.clear()
    message = str(failed.value)
    no_traceback(message)
    assert f"node {NODE}: setchannel failed for {fleet_scid}" in message, message
    assert says in message
    tried = node.setchannel_scids(0)
    assert fleet_scid in tried
    rows = {c[0]: c for c in node.changes()}
    assert rows[fleet_scid][1] == status and says in rows[fleet_scid][4]
    on_node = node.fees_on_node()
    reached = {s for s in tried if on_node[s] == rows[s][2:4]}  # the node applied these
    assert bool(reached) == (status == "pending")

    mark = len(node.proxy.log)
    node.cycle(now + 60)  # the fault cleared: the next cycle settles and finishes the job
    again = node.setchannel_scids(mark)
    assert not reached & set(again), "a change the node had applied was made again"
    assert node.fees_on_node()[fleet_scid] == (0, 0)
    assert_each_change_once(node)


def test_run_killed_after_setchannel_before_record(node: Node) -> None:
    """`hiveops run fees` is SIGKILLed right after the node applied its first fee change."""
    from prefect.settings import PREFECT_API_URL

    now = node.fleet.now
    collect(config_path=str(node.config), now=now)
    node.proxy.set(on_setchannel(KillClient()))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    cmd = [sys.executable, "-m", "hiveops.cli", "run", "fees", "--config", str(node.config)]
    proc = subprocess.run(
        [*cmd, "--now", str(now)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    node.proxy.clear()
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    killed_scid = node.setchannel_scids(0)[0]
    changed = node.fees_on_node()[killed_scid]
    pending = [c for c in node.changes() if c[1] == "pending"]
    assert killed_scid in {c[0] for c in pending}  # recorded before the call, never finished

    mark = len(node.proxy.log)
    node.cycle(now + 60)
    rows = node.changes()
    assert [c[1] for c in rows if c[0] == killed_scid and c[2:4] == changed] == ["applied"]
    assert killed_scid not in node.setchannel_scids(mark), "the applied change was made again"
    assert_each_change_once(node)
