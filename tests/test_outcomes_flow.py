"""Fee-change outcomes on the simulator: a real effect is measured with its sign, no traffic is
marked insufficient_data, never a silent 0."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from pyln.client import LightningRpc

from flows.collect import collect
from flows.outcomes import outcomes
from lnsim.simfleet import SimFleet
from warehouse import db

DAY_S = 86_400


def log_change(wh: Path, node_id: str, scid: str, peer: str, at: int, old: int, new: int) -> None:
    with db.writer(wh) as con:  # what the fees flow writes when it applies a change
        con.execute(
            "INSERT INTO fee_changes VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?, ?, 'thompson', 0, ?, "
            "'applied', NULL)",
            [
                uuid.uuid4().hex,
                node_id,
                scid,
                peer,
                datetime.fromtimestamp(at, UTC),
                old,
                new,
                new,
                DAY_S,
            ],
        )


def test_fee_change_outcome_has_the_right_sign_and_quiet_change_is_insufficient(
    tmp_path: Path, prefect_harness: None
) -> None:
    with SimFleet("busy", workdir=tmp_path / "sim") as fleet:
        path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "w.duckdb")
        wh = tmp_path / "w.duckdb"
        for _ in range(4):
            fleet.advance(DAY_S // 4)
            collect(config_path=str(path), now=fleet.now)
        node_id = fleet.node_ids["nexus-02"]
        with db.reader(wh) as con:
            (busiest,) = con.execute(
                "SELECT out_channel FROM forwards WHERE node_id = ? AND status = 'settled' "
                "AND fee_msat > 0 GROUP BY 1 ORDER BY sum(fee_msat) DESC LIMIT 1",
                [node_id],
            ).fetchall()[0]
            quiet = con.execute(
                "SELECT scid, peer_id, fee_ppm FROM channel_latest c WHERE node_id = ? AND NOT "
                "is_fleet AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.node_id = c.node_id "
                "AND (f.out_channel = c.scid OR f.in_channel = c.scid)) LIMIT 1",
                [node_id],
            ).fetchall()
            busy_row = con.execute(
                "SELECT peer_id, fee_ppm FROM channel_latest WHERE node_id = ? AND scid = ?",
                [node_id, busiest],
            ).fetchall()[0]
        rpc = LightningRpc(str(fleet.socket_paths["nexus-02"]))
        rpc.setchannel(busiest, feebase=0, feeppm=0)  # giving routing away: revenue must drop
        log_change(wh, node_id, busiest, busy_row[0], fleet.now, busy_row[1], 0)
        if quiet:
            rpc.setchannel(quiet[0][0], feebase=0, feeppm=quiet[0][2] + 300)
            log_change(
                wh, node_id, quiet[0][0], quiet[0][1], fleet.now, quiet[0][2], quiet[0][2] + 300
            )
        for _ in range(4):
            fleet.advance(DAY_S // 4)
            collect(config_path=str(path), now=fleet.now)
        outcomes(config_path=str(path), now=fleet.now + 60)
        with db.reader(wh) as con:
            rows = {
                r[0]: r[1:]
                for r in con.execute(
                    "SELECT scid, status, actual_benefit_msat, detail, method, window_start, "
                    "window_end, treated_before_forwards + treated_after_forwards "
                    "FROM fee_outcomes"
                ).fetchall()
            }
            helped = con.execute("SELECT count(*) FROM fee_change_outcomes").fetchall()[0][0]
    status, benefit, detail, method, window_start, window_end, treated_forwards = rows[busiest]
    assert status == "measured", detail
    assert benefit is not None and benefit < 0
    # a measured value names how and over what it was measured
    assert method in ("did_unchanged", "did_node_trend", "before_after") and method in detail
    assert window_start < window_end and treated_forwards > 0
    if quiet:
        assert rows[quiet[0][0]][0] == "insufficient_data"
        assert rows[quiet[0][0]][1] is None
    assert helped == len(rows)
