"""The collect loop against the simulated fleet on real sockets, as real Prefect flow runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.collect import collect
from flows.common import LoopFailed
from models.settings import load_settings
from tasks.gateway import NodeError, NodeGateway
from warehouse import db

ROOT = Path(__file__).resolve().parents[1]
DAY_S = 86_400


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    from lnsim.simfleet import SimFleet

    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(3 * DAY_S)
        yield fleet


@pytest.fixture
def config(fleet, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "hiveops.toml"
    fleet.write_config(path, tmp_path / "hiveops.duckdb")
    with path.open("a") as f:
        f.write("\n[rpc]\nretries = 2\nbackoff_base_s = 0.01\npage_size = 100\n")
    return path


def scalar(config: Path, query: str) -> object:
    with db.reader(load_settings(config).warehouse_path) as con:
        return con.execute(query).fetchall()[0][0]


def sim_total(fleet) -> int:  # type: ignore[no-untyped-def]
    return sum(fleet.forward_count(name) for name in fleet.socket_paths)


def test_collect_twice_stores_exactly_the_simulators_forwards(
    fleet, config: Path, prefect_harness: None
) -> None:
    collect(config_path=str(config), now=fleet.now)
    fleet.advance(DAY_S)
    collect(config_path=str(config), now=fleet.now)
    collect(config_path=str(config), now=fleet.now)  # same cycle again: adds nothing
    assert sim_total(fleet) > 0
    assert scalar(config, "select count(*) from forwards") == sim_total(fleet)
    assert scalar(config, "select count(distinct (node_id, created_index)) from forwards") == (
        sim_total(fleet)
    )
    assert scalar(config, "select count(*) from heartbeats where status <> 'ok'") == 0
    assert scalar(config, "select count(*) from node_snapshots where capacity_msat = 0") == 0
    assert scalar(config, "select count(*) from peer_fee_policies where not is_ours") > 0


def test_zero_balance_snapshot_is_rejected_with_an_alert(
    fleet, config: Path, prefect_harness: None
) -> None:
    fleet.faults.set("nexus-02", "listpeerchannels", zero_balances=True)
    with pytest.raises(LoopFailed, match="snapshot rejected"):
        collect(config_path=str(config), now=fleet.now)
    node_id = fleet.node_ids["nexus-02"]
    assert scalar(config, f"select count(*) from node_snapshots where node_id = '{node_id}'") == 0
    assert scalar(config, "select count(*) from alerts where kind = 'zero_snapshot'") == 1
    # The rest of the cycle still ran: forwards are not lost because the snapshot was bad.
    assert scalar(config, f"select count(*) from forwards where node_id = '{node_id}'") == (
        fleet.forward_count("nexus-02")
    )


def test_old_msat_strings_collect_the_same_numbers(
    fleet, config: Path, prefect_harness: None
) -> None:
    fleet.faults.set("nexus-02", "*", msat_strings=True)
    collect(config_path=str(config), now=fleet.now)
    assert scalar(config, "select count(*) from forwards") == sim_total(fleet)
    fees = scalar(config, "select sum(fee_msat) from forwards where status = 'settled'")
    assert isinstance(fees, int) and fees > 0


def test_rpc_error_is_retried_then_reported_with_method_and_code(fleet, config: Path) -> None:
    settings = load_settings(config)
    fleet.faults.set("nexus-01", "getinfo", error_rate=1.0, error_code=-5)
    gateway = NodeGateway(settings.node("nexus-01"), settings.rpc)
    before = fleet.call_count("nexus-01", "getinfo")
    with pytest.raises(NodeError) as err:
        gateway.call("getinfo")
    assert "node nexus-01: getinfo failed (code -5)" in str(err.value)
    assert "gave up after 3 attempts" in str(err.value)
    assert fleet.call_count("nexus-01", "getinfo") - before == 3


def test_fatal_rpc_error_is_not_retried(fleet, config: Path) -> None:
    settings = load_settings(config)
    gateway = NodeGateway(settings.node("nexus-01"), settings.rpc)
    with pytest.raises(NodeError, match=r"no-such-method failed \(code -32601\)"):
        gateway.call("no-such-method")
    assert gateway.calls == 1


def test_node_vanishing_mid_sync_keeps_pages_and_next_run_completes(
    fleet, config: Path, prefect_harness: None
) -> None:
    with fleet.net.lock:
        fleet.market.synthesize_forwards(fleet.node_ids["nexus-02"], 2_000, seed=1)
    fleet.faults.set("nexus-02", "listforwards", latency_s=0.05)
    start_calls = fleet.call_count("nexus-02", "listforwards")

    def vanish_after_three_pages() -> None:
        while fleet.call_count("nexus-02", "listforwards") < start_calls + 3:
            time.sleep(0.01)
        fleet.stop_node("nexus-02")

    stopper = threading.Thread(target=vanish_after_three_pages)
    stopper.start()
    with pytest.raises(LoopFailed, match="nexus-02"):
        collect(config_path=str(config), now=fleet.now)
    stopper.join()
    node_id = fleet.node_ids["nexus-02"]
    partial = scalar(config, f"select count(*) from forwards where node_id = '{node_id}'")
    assert 0 < partial < fleet.forward_count("nexus-02")
    assert scalar(config, "select count(*) from alerts where node = 'nexus-02'") >= 1
    assert scalar(config, "select status from heartbeats where node = 'nexus-02'") == "failed"
    fleet.faults.clear()
    fleet.start_node("nexus-02")
    collect(config_path=str(config), now=fleet.now + 1)
    assert scalar(config, "select count(*) from forwards") == sim_total(fleet)


def test_two_collect_runs_started_together_both_complete(
    fleet, config: Path, prefect_harness: None
) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    cmd = [
        sys.executable,
        "-m",
        "hiveops.cli",
        "run",
        "collect",
        "--config",
        str(config),
        "--now",
        str(fleet.now),
    ]
    procs = [
        subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
    assert scalar(config, "select count(*) from forwards") == sim_total(fleet)
    assert scalar(config, "select count(*) from heartbeats where status = 'ok'") == 2 * len(
        fleet.socket_paths
    )
