"""A node that is not there: the run fails loudly and leaves rows that say so."""

from pathlib import Path

import pytest

from flows.collect import collect
from flows.common import LoopFailed
from warehouse import db


def test_unreachable_node_fails_the_run_with_alert_and_heartbeat(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = tmp_path / "hiveops.toml"
    config.write_text(
        f'warehouse_path = "{tmp_path / "w.duckdb"}"\n'
        f'[[nodes]]\nname = "ghost"\nrpc_socket = "{tmp_path / "nope" / "lightning-rpc"}"\n'
        "[rpc]\nretries = 1\nbackoff_base_s = 0.01\n"
    )
    with pytest.raises(LoopFailed, match="node ghost: getinfo failed: cannot reach lightningd"):
        collect(config_path=str(config), now=1_767_225_600)
    with db.reader(tmp_path / "w.duckdb") as con:
        beat = con.execute("SELECT loop, node, status, detail FROM heartbeats").fetchall()
        alert = con.execute("SELECT kind, severity, node, message FROM alerts").fetchall()
    assert beat[0][:3] == ("collect", "ghost", "failed")
    assert "gave up after 2 attempts" in beat[0][3]
    assert alert[0][:3] == ("node_unreachable", "critical", "ghost")
