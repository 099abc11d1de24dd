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
    Hang,
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
        # A channel to nexus-03 (not configured here, so not known as fleet) at 1000 msat + 25 ppm:
        # the first fees run must change it (base_fee_msat is 0).
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
    assert message.startswith(f"node {NODE}: setchannel failed for "), message
    assert f"{fleet_scid}: {status}" in message, message
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
    assert node.fees_on_node()[fleet_scid] != (1000, 25)  # the change got made, once
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


# -- rebalancing: a sling-once whose outcome the run never hears ---------------------------------


@pytest.fixture
def assisted(tmp_path: Path, prefect_harness: None) -> Iterator[tuple[Any, FaultProxy, Path]]:
    """The audit fleet after collect and fleet: nexus-03 (critical) is due a fleet-assistance
    pull, and its socket is the faulty proxy."""
    from flows.fleet import fleet as fleet_flow
    from lnsim.simfleet import SimFleet

    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        (tmp_path / "proxy").mkdir()
        real = fleet.socket_paths["nexus-03"]
        with FaultProxy(real, tmp_path / "proxy" / "rpc") as proxy:
            path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "w.duckdb")
            path.write_text(path.read_text().replace(str(real), str(proxy.path)) + "\n" + RPC)
            collect(config_path=str(path), now=fleet.now)
            fleet_flow(config_path=str(path), now=fleet.now)
            yield fleet, proxy, path


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    db.release_all()
    with db.reader(path.parent / "w.duckdb") as con:
        return con.execute(query).fetchall()


def once_jobs(fleet: Any) -> list[str]:
    jobs = LightningRpc(str(fleet.socket_paths["nexus-03"])).call("sling-jobsettings", {})
    return [scid for scid, job in jobs.items() if "onceamount_msat" in job]


@pytest.mark.parametrize(
    ("action", "started_on_node"),
    [(Hang(), False), (AnswerLost(), True)],
    ids=["sling_once_hangs_then_fails", "sling_once_started_answer_lost"],
)
def test_rebalance_start_outcome_unknown(
    assisted: tuple[Any, FaultProxy, Path], action: Action, started_on_node: bool
) -> None:
    from flows.rebalance import rebalance

    fleet, proxy, path = assisted
    proxy.set(lambda call: action if call.method == "sling-once" else None)
    with pytest.raises(LoopFailed) as failed:
        rebalance(config_path=str(path), now=fleet.now)
    proxy.clear()
    message = str(failed.value)
    no_traceback(message)
    assert "node nexus-03: sling-once" in message, message
    assert "the reservation stays open until the next run reconciles it" in message
    assert proxy.calls["sling-once"] == 1, "a sling-once whose answer was lost was sent again"
    held = rows(path, "SELECT attempt_id, scid FROM rebalance_reservations WHERE closed_at IS NULL")
    assert len(held) == 1  # the money stays reserved while the outcome is unknown
    ((attempt_id, scid),) = held
    assert once_jobs(fleet) == ([scid] if started_on_node else [])

    mark = len(proxy.log)
    fleet.advance(2 * HOUR_S)
    rebalance(config_path=str(path), now=fleet.now)
    restarted = [c for c in proxy.log[mark:] if c.method == "sling-once"]
    closed = rows(
        path,
        f"SELECT closed_as, close_reason FROM rebalance_reservations "
        f"WHERE attempt_id = '{attempt_id}'",
    )
    if started_on_node:  # the job is tracked like any other: a new pull only once it ended
        if [c for c in restarted if c.params.get("scid") == scid]:
            assert closed[0][0] in ("settled", "released"), closed
    else:  # no job ever ran: the reservation is released and the pull may be tried again
        assert closed[0][0] == "released", closed
    open_per_scid = rows(
        path,
        "SELECT scid, count(*) FROM rebalance_reservations WHERE closed_at IS NULL GROUP BY scid",
    )
    assert all(n == 1 for _, n in open_per_scid), open_per_scid
    over = rows(
        path,
        "SELECT count(*) FROM budget_ledger "
        "WHERE rebalance_spent_msat + onchain_spent_msat > budget_msat",
    )
    assert over == [(0,)]


def test_budget_ledger_edited_by_hand(assisted: tuple[Any, FaultProxy, Path]) -> None:
    """The ledger table is a record, never an input: money is reserved against a ledger rebuilt
    from forwards, costs and rebalance fees, and the edited row is rewritten from them."""
    import duckdb

    from flows.rebalance import rebalance

    fleet, _, path = assisted
    rebalance(config_path=str(path), now=fleet.now)
    facts = (
        "budget_msat, fixed_budget_msat, earnings_budget_msat, earned_msat, rebalance_spent_msat"
    )
    clean = rows(path, f"SELECT node_id, day, {facts} FROM budget_ledger ORDER BY node_id, day")
    db.release_all()
    con = duckdb.connect(str(path.parent / "w.duckdb"))
    con.execute(
        "UPDATE budget_ledger SET budget_msat = 1000000000000000, fixed_budget_msat = "
        "1000000000000000, earnings_budget_msat = 1000000000000000, rebalance_spent_msat = 0"
    )
    con.close()
    reserved = "SELECT coalesce(sum(max_fee_msat), 0) FROM rebalance_reservations"
    before = rows(path, reserved)
    rebalance(config_path=str(path), now=fleet.now + 60)
    assert rows(path, f"SELECT node_id, day, {facts} FROM budget_ledger ORDER BY node_id, day") == (
        clean
    )
    budget = {r[0]: r[2] for r in clean}
    new = rows(
        path,
        "SELECT node_id, coalesce(sum(max_fee_msat), 0) FROM rebalance_reservations "
        "GROUP BY node_id",
    )
    for node_id, reserved_msat in new:
        assert reserved_msat <= budget[node_id], "reserved past the budget the facts allow"
    assert rows(path, reserved)[0][0] >= before[0][0]
