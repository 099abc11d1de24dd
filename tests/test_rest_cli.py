"""`hiveops sim start --rest` serves clnrest and writes a config that reaches members over it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from models.settings import load_settings
from tasks.gateway import NodeGateway

ROOT = Path(__file__).resolve().parents[1]


def test_sim_start_rest_writes_a_mixed_config_that_works_over_https(tmp_path: Path) -> None:
    config = tmp_path / "hiveops.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hiveops.cli",
            "sim",
            "start",
            "--manual",
            "--rest",
            "nexus-02",
            "--workdir",
            str(tmp_path / "sim"),
            "--write-config",
            str(config),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops" in line or not line:
                break
        out = "".join(lines)
        assert "clnrest https://127.0.0.1:" in out, out
        settings = load_settings(config)
        transports = {n.name: n.transport for n in settings.nodes}
        assert transports == {"nexus-01": "socket", "nexus-02": "rest", "nexus-03": "socket"}
        node = settings.node("nexus-02")
        assert node.ca_cert is not None and node.ca_cert.exists()
        assert node.rune_file is not None and oct(node.rune_file.stat().st_mode)[-3:] == "600"
        assert node.load_rune().get_secret_value() not in out + config.read_text()
        info = NodeGateway(node, settings.rpc).call("getinfo")
        assert info["id"] == node.node_id
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
