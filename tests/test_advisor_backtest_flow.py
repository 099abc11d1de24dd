"""The advisor's fee estimate scored on every fee change, from the warehouse as it stood then."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.advisor.predict import fit_calibration
from flows.advisor import advisor
from flows.collect import collect
from flows.common import LoopFailed
from flows.fees import fees
from flows.outcomes import outcomes
from lnsim.simfleet import SimFleet
from models.advisor import AdvisorConfig, OpportunityType
from models.settings import load_settings
from tasks.advisor import load_learning, read_channel_inputs
from tasks.advisor_backtest import backtest_fee_changes
from warehouse import db

HOUR_S = 3600
DAY_S = 86_400


def stats_as_of(warehouse: Path, node_id: str, path: Path, as_of: datetime) -> pl.DataFrame:
    settings = load_settings(path)
    with db.reader(warehouse) as con:
        inputs = read_channel_inputs(con, node_id, settings, AdvisorConfig(), as_of)
    return inputs.channels


def test_every_fee_change_is_scored_once_as_of_its_instant_and_measured_ones_train(
    tmp_path: Path, prefect_harness: None
) -> None:
    """Eight audit days (collect every 8 h; fees, outcomes and advisor daily). Every applied fee
    change gets exactly one backtest row, also when the advisor runs twice; the channel stats
    it was scored on, read as of day 3 from the final warehouse, equal those read from a copy
    taken on day 3 (nothing later leaks in); the measured ones join the calibration's evidence.
    """
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
        warehouse = load_settings(path).warehouse_path
        me = fleet.node_ids["nexus-02"]
        snapshot_at: datetime | None = None
        for day in range(8):
            for _ in range(3):
                fleet.advance(8 * HOUR_S)
                collect(config_path=str(path), now=fleet.now)
            fees(config_path=str(path), now=fleet.now)
            outcomes(config_path=str(path), now=fleet.now)
            advisor(config_path=str(path), now=fleet.now)
            if day == 3:
                db.release_all()
                shutil.copy(warehouse, tmp_path / "day3.duckdb")
                snapshot_at = datetime.fromtimestamp(fleet.now, UTC)
        again = advisor(config_path=str(path), now=fleet.now)
        db.release_all()
        now = datetime.fromtimestamp(fleet.now, UTC)
        assert snapshot_at is not None
        early = stats_as_of(tmp_path / "day3.duckdb", me, path, snapshot_at)
        late = stats_as_of(warehouse, me, path, snapshot_at)
        assert early.height > 0
        assert_frame_equal(early, late)

        with db.reader(warehouse) as con:
            applied = con.execute(
                "SELECT count(*) FROM fee_changes WHERE status = 'applied'"
            ).fetchone()[0]
            rows = con.execute(
                "SELECT count(*), count(DISTINCT change_id),"
                " count(*) FILTER (WHERE raw_estimate_msat <> 0),"
                " count(*) FILTER (WHERE starts_with(estimate_reason, 'not scored'))"
                " FROM advisor_fee_backtests"
            ).fetchone()
        assert again["backtested"] == 0
        assert applied > 10 and rows[0] == rows[1] == applied
        assert rows[2] > 0  # channels with traffic get a real estimate
        settings = load_settings(path)
        assert backtest_fee_changes.fn(warehouse, me, settings, AdvisorConfig(), now) == 0

        learning = load_learning.fn(warehouse, now)
        assert learning.backtests.height > 0
        assert set(learning.backtests["opportunity_type"]) == {"fee"}
        changes = fit_calibration(learning.backtests, AdvisorConfig())[
            OpportunityType.FEE
        ]  # the centre the fee prior takes from them
        fitted = fit_calibration(learning.samples, AdvisorConfig(), backtests=learning.backtests)
        own = fit_calibration(learning.samples, AdvisorConfig())
        fee, plain = fitted[OpportunityType.FEE], own[OpportunityType.FEE]
        assert fee.samples == plain.samples
        assert changes.samples > 0 and changes.factor != 0.5
        assert (fee.factor - plain.factor) * (changes.factor - 0.5) > 0  # moved its way
        # the evidence as of an earlier day holds only what was measured by then
        earlier = load_learning.fn(warehouse, now - timedelta(days=3))
        assert earlier.backtests.height < learning.backtests.height


def test_a_failed_scoring_alerts_and_the_advisor_still_decides(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learning from less is no reason to stop deciding: the run records its decisions, then
    fails with an advisor_failed alert that names the scoring."""

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("scoring bug")

    monkeypatch.setattr("tasks.advisor_backtest.score_fee_change", broken)
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
        fleet.advance(DAY_S)
        collect(config_path=str(path), now=fleet.now)
        fees(config_path=str(path), now=fleet.now)
        with pytest.raises(LoopFailed, match="scoring fee changes for calibration failed"):
            advisor(config_path=str(path), now=fleet.now)
    db.release_all()
    with db.reader(load_settings(path).warehouse_path) as con:
        decisions = con.execute("SELECT count(*) FROM advisor_decisions").fetchone()[0]
        alerts = con.execute(
            "SELECT count(*) FROM alerts WHERE kind = 'advisor_failed'"
            " AND message LIKE '%scoring bug%'"
        ).fetchone()[0]
    assert decisions > 0 and alerts >= 1
