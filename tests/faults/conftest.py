"""The fault matrix's shared world: one simulated fleet, a faulty node in front of nexus-02,
a baseline warehouse filled by a clean run, and what a clean run stores once the node moved on.
Collect never changes the simulator, so every case copies the baseline and stays independent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.collect import collect
from tests.faults.harness import DAY_S, NODE, RPC, T0, T2, World, dump, write_config
from tests.faults.nodeproxy import FaultProxy
from warehouse import db


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[World]:
    from lnsim.simfleet import SimFleet

    tmp = tmp_path_factory.mktemp("node-faults")
    with SimFleet("audit", workdir=tmp / "sim") as fleet:
        fleet.advance(3 * DAY_S)
        node_id = fleet.node_ids[NODE]
        with fleet.net.lock:
            fleet.market.synthesize_forwards(node_id, 250, seed=7)
        (tmp / "proxy").mkdir()
        with FaultProxy(fleet.socket_paths[NODE], tmp / "proxy" / "rpc") as proxy:
            baseline = tmp / "baseline.duckdb"
            collect(
                config_path=str(write_config(tmp / "b.toml", fleet, proxy.path, baseline, RPC)),
                now=T0,
            )
            with fleet.net.lock:  # what the node did after the baseline
                fleet.market.synthesize_forwards(node_id, 230, seed=8)
            clean = tmp / "clean.duckdb"
            cfg = write_config(tmp / "c.toml", fleet, fleet.socket_paths[NODE], clean, RPC)
            collect(config_path=str(cfg), now=T2)
            db.release_all()
            yield World(fleet, proxy, tmp, baseline, dump(clean))
