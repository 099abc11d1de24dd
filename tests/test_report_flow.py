"""The report flow against the simulator with injected audit faults, as a real Prefect run."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyln.client import LightningRpc

from flows.collect import collect
from flows.common import LoopFailed
from flows.report import report
from lnsim.simfleet import SimFleet
from models.settings import load_settings
from tasks.report import ARTIFACT_KEY
from warehouse import db

HOUR_S = 3600
DAY_S = 86_400
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(DAY_S)
        yield fleet


def test_injected_audit_faults_fire_their_detectors_alerts_artifact_and_charts(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    from prefect.artifacts import Artifact

    path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    with path.open("a") as f:
        f.write("\n[rpc]\nretries = 1\nbackoff_base_s = 0.01\ntimeout_s = 2\n")
    collect(config_path=str(path), now=fleet.now)  # a healthy cycle first

    # Fault 1: a fleet channel given a fee (the audit's floor on hive channels).
    rpc = LightningRpc(str(fleet.socket_paths["nexus-01"]))
    members = set(fleet.node_ids.values())
    fleet_channel = next(c for c in rpc.listpeerchannels()["channels"] if c["peer_id"] in members)
    rpc.setchannel(fleet_channel["short_channel_id"], feebase=1000, feeppm=25)
    fleet.advance(2 * HOUR_S)
    # Fault 2: zero balances from nexus-02. Fault 3: nexus-03 stopped.
    fleet.faults.set("nexus-02", "listpeerchannels", zero_balances=True)
    fleet.stop_node("nexus-03")
    with pytest.raises(LoopFailed):
        collect(config_path=str(path), now=fleet.now)

    result = report(config_path=str(path), now=fleet.now)

    expected = {"zero_snapshot", "fleet_fee_nonzero", "loop_stale", "retries_exhausted"}
    assert expected <= set(result["fired"]), result
    wh = load_settings(path).warehouse_path
    with db.reader(wh) as con:
        findings = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT f.detector, f.status, f.summary, a.kind FROM report_findings f "
                "LEFT JOIN alerts a USING (alert_id)"
            ).fetchall()
        }
        heartbeat = con.execute(
            "SELECT status, decisions FROM heartbeats WHERE loop = 'report'"
        ).fetchall()
    assert len(findings) == 17
    for detector in expected:
        status, _, alert_kind = findings[detector]
        assert (status, alert_kind) == ("fired", f"report_{detector}")
    assert "nexus-03" in findings["loop_stale"][1]
    assert fleet_channel["short_channel_id"] in findings["fleet_fee_nonzero"][1]
    assert "25 ppm" in findings["fleet_fee_nonzero"][1]
    assert heartbeat == [("ok", 17)]

    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None
    assert "## CRITICAL Issues" in str(artifact.data)
    assert "Net P&L" in str(artifact.data)
    markdown = Path(result["markdown"]).read_text()
    assert len(result["charts"]) == 2
    inlined = markdown
    for chart in result["charts"]:
        png = Path(chart).read_bytes()
        assert png[:8] == PNG_SIGNATURE
        name = Path(chart).name
        assert f"]({name})" in markdown  # the file links its neighbour
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        assert f"]({uri})" in str(artifact.data)  # the UI gets the image itself
        inlined = inlined.replace(f"]({name})", f"]({uri})")
    assert str(artifact.data) == inlined


def test_tables_not_yet_migrated_are_reported_not_measurable(tmp_path: Path) -> None:
    from engine.report import run_detectors
    from models.report import ReportConfig
    from tasks.report import load_report_inputs

    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "wh.duckdb"}"\n')
    settings = load_settings(path)
    with db.writer(settings.warehouse_path) as con:  # as if 006/007 had not landed yet
        con.execute("DROP VIEW advisor_calibration; DROP TABLE advisor_decisions")
        con.execute("DROP TABLE fleet_contribution")
    inputs = load_report_inputs.fn(settings, datetime.now(UTC), ReportConfig())
    assert "advisor_decisions" not in inputs.tables and "channels" in inputs.frames
    findings = {f.detector: f for f in run_detectors(inputs, ReportConfig())}
    assert findings["rejection_loop"].summary == (
        "not measurable: table advisor_decisions missing (migration not applied yet?)"
    )
    assert findings["zero_contribution"].status == "not_measurable"
    assert findings["zero_contribution"].evidence == {"missing_tables": ["fleet_contribution"]}
    db.release_all()


def test_charts_without_matplotlib_are_still_written_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from engine.report.compose import ChartData
    from tasks.report import render_charts

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    data = ChartData(
        pnl_by_node={"nexus-02": [("2026-02-01", -3_189_000), ("2026-02-02", -2_234_000)]},
        pnl_fleet=[("2026-02-01", -3_189_000), ("2026-02-02", -2_234_000)],
        balance=[{"bucket": "0-10%", "external": 2, "fleet": 0}],
    )
    charts, note = render_charts.fn(tmp_path, data)
    assert "matplotlib is not installed" in note
    for name in charts.values():
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
