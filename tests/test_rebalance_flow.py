"""The rebalance loop against the simulator: reservations, sling jobs, crash recovery, dry-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyln.client import LightningRpc

from flows.collect import collect
from flows.fleet import fleet as fleet_flow
from flows.outcomes import outcomes
from flows.rebalance import rebalance
from lnsim.simfleet import SimFleet
from models.settings import load_settings
from warehouse import db

HOUR_S = 3600
ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path, query: str) -> list[tuple]:
    db.release_all()
    with db.reader(load_settings(path).warehouse_path) as con:
        return con.execute(query).fetchall()


def _once_jobs(fleet: SimFleet, name: str) -> list[str]:
    rpc = LightningRpc(str(fleet.socket_paths[name]))
    jobs = rpc.call("sling-jobsettings", {})
    return [scid for scid, job in jobs.items() if "onceamount_msat" in job]


@pytest.fixture
def audit(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        yield fleet


def _prepare(fleet: SimFleet, tmp_path: Path, extra: str = "") -> Path:
    path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    with path.open("a") as f:
        f.write(extra)
    collect(config_path=str(path), now=fleet.now)
    fleet_flow(config_path=str(path), now=fleet.now)
    return path


def test_sigkill_mid_run_leaves_no_orphan_job_and_no_leaked_reservation(
    audit: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    """nexus-03 (critical in the audit) gets a fleet-assistance pull; the run is killed while
    sling-once is in flight, and the job starts after the process died."""
    path = _prepare(audit, tmp_path)
    audit.faults.set("nexus-03", "sling-once", latency_s=3.0, count=1)
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    log = (tmp_path / "killed-run.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hiveops.cli",
            "run",
            "rebalance",
            "--config",
            str(path),
            "--now",
            str(audit.now),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 120
    while audit.call_count("nexus-03", "sling-once") == 0:
        if proc.poll() is not None:
            pytest.fail(
                "the run ended before sling-once:\n" + (tmp_path / "killed-run.log").read_text()
            )
        assert time.monotonic() < deadline, "the run never reached sling-once"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3.5)  # the simulator now starts the job the dead run asked for
    assert _once_jobs(audit, "nexus-03"), "the killed run's job should be running in sling"
    open_before = _rows(path, "SELECT count(*) FROM rebalance_reservations WHERE closed_at IS NULL")
    assert open_before[0][0] >= 1

    # The next runs reconcile first: the job is watched, then settled or stopped, never lost.
    killed_at = audit.now
    audit.advance(2 * HOUR_S)
    collect(config_path=str(path), now=audit.now)
    rebalance(config_path=str(path), now=audit.now)

    killed = _rows(
        path,
        "SELECT a.state, r.closed_as, a.failure_reason FROM rebalance_attempts a "
        "JOIN rebalance_reservations r USING (attempt_id) "
        f"WHERE a.proposed_at = to_timestamp({killed_at})",
    )
    assert killed, "the killed run's attempt must be in the warehouse"
    for state, closed_as, _reason in killed:
        assert state in ("succeeded", "failed"), killed
        assert closed_as in ("settled", "released"), killed
    stale = _rows(
        path,
        "SELECT count(*) FROM rebalance_reservations r JOIN rebalance_attempts a "
        f"USING (attempt_id) WHERE r.closed_at IS NULL AND a.proposed_at < "
        f"to_timestamp({audit.now})",
    )
    assert stale[0][0] == 0
    mine = {row[0] for row in _rows(path, "SELECT dest_scid FROM rebalance_attempts")}
    open_jobs = set(_once_jobs(audit, "nexus-03"))
    open_now = {
        row[0]
        for row in _rows(path, "SELECT scid FROM rebalance_reservations WHERE closed_at IS NULL")
    }
    assert open_jobs & mine <= open_now, "a sling-once of ours runs without a reservation"


def test_audit_scenario_never_pays_more_than_it_earns(
    audit: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    """Audit traffic, 21 days: every EV attempt's expected gain covers its maximum cost, and
    what rebalancing cost stays below what routing earned."""
    path = _prepare(audit, tmp_path)
    for _ in range(21):
        collect(config_path=str(path), now=audit.now)
        fleet_flow(config_path=str(path), now=audit.now)
        rebalance(config_path=str(path), now=audit.now)
        audit.advance(24 * HOUR_S)
    collect(config_path=str(path), now=audit.now)
    outcomes(config_path=str(path), now=audit.now)
    below = _rows(
        path,
        "SELECT count(*) FROM rebalance_attempts WHERE purpose = 'ev' AND "
        "expected_revenue_msat - opportunity_cost_msat < max_cost_msat",
    )
    assert below[0][0] == 0
    spent, earned = _rows(
        path,
        "SELECT (SELECT coalesce(sum(fee_msat), 0) FROM rebalance_attempts)::BIGINT, "
        "(SELECT coalesce(sum(fee_msat), 0) FROM forwards WHERE status = 'settled')::BIGINT",
    )[0]
    assert earned > 0
    assert spent < earned
    over = _rows(
        path,
        "SELECT count(*) FROM budget_ledger WHERE rebalance_spent_msat + onchain_spent_msat "
        "> budget_msat AND rebalance_spent_msat > 0",
    )
    assert over[0][0] == 0
    days = _rows(path, "SELECT count(DISTINCT day) FROM budget_ledger")[0][0]
    assert days >= 21
    unmeasured = _rows(
        path,
        "SELECT count(*) FROM rebalance_attempts a ANTI JOIN rebalance_outcomes o "
        "USING (attempt_id) WHERE a.state = 'failed'",
    )
    assert unmeasured[0][0] == 0


def test_dry_run_records_decisions_and_moves_nothing(
    audit: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = _prepare(audit, tmp_path, "\n[htlcmax]\nenabled = true\n")
    path.write_text("dry_run = true\n" + path.read_text())
    rebalance(config_path=str(path), now=audit.now)
    assert all(audit.call_count(n, "sling-once") == 0 for n in audit.node_ids)
    states = _rows(path, "SELECT DISTINCT state FROM rebalance_attempts")
    assert states in ([], [("dry_run",)])
    assert _rows(path, "SELECT count(*) FROM rebalance_reservations")[0][0] == 0
    skips = _rows(path, "SELECT count(*) FROM rebalance_skips")[0][0]
    channels = _rows(path, "SELECT count(*) FROM channel_latest")[0][0]
    attempts = _rows(path, "SELECT count(*) FROM rebalance_attempts")[0][0]
    assert skips + attempts == channels  # every channel got a decision
    # the max-HTLC step decides and records, and calls nothing
    assert all(audit.call_count(n, "setchannel") == 0 for n in audit.node_ids)
    statuses = _rows(path, "SELECT DISTINCT status FROM htlcmax_changes")
    assert statuses in ([], [("dry_run",)])


def test_depleted_channels_post_a_max_htlc_that_fits_recorded_before_the_call(
    tmp_path: Path, prefect_harness: None
) -> None:
    with SimFleet("busy", workdir=tmp_path / "sim") as busy:
        busy.advance(24 * HOUR_S)  # busy traffic drains some channels in a day
        path = busy.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
        with path.open("a") as f:
            f.write("\n[htlcmax]\nenabled = true\n")  # off by default
        collect(config_path=str(path), now=busy.now)
        busy.faults.set("nexus-02", "setchannel", error_rate=1.0, error_code=-1, count=1)
        rebalance(config_path=str(path), now=busy.now)
        rows = _rows(
            path,
            "SELECT h.scid, h.status, h.new_htlcmax_msat, h.spendable_msat, h.capacity_msat,"
            " h.reason, n.name FROM htlcmax_changes h JOIN nodes n USING (node_id)",
        )
        assert rows, "a day of busy traffic leaves no channel narrow enough to act on"
        failed = [r for r in rows if r[1] == "failed"]
        assert len(failed) == 1 and failed[0][6] == "nexus-02"  # recorded, the error kept
        applied = [r for r in rows if r[1] == "applied"]
        assert applied and all(r[1] in ("applied", "failed") for r in rows)
        for scid, _, new, spendable, capacity, reason, name in applied:
            if reason == "fits_spendable":
                assert new <= max(spendable, capacity // 64)
            rpc = LightningRpc(str(busy.socket_paths[name]))
            [posted] = [
                c["maximum_htlc_out_msat"]
                for c in rpc.listpeerchannels()["channels"]
                if c.get("short_channel_id") == scid
            ]
            assert posted == new
        # the next run, with nothing moved, changes nothing (the ladder is the hysteresis) and
        # the failed channel waits for no rate limit (its change never applied)
        collect(config_path=str(path), now=busy.now + 60)
        rebalance(config_path=str(path), now=busy.now + 60)
        again = _rows(
            path,
            "SELECT count(*) FROM htlcmax_changes WHERE decided_at > "
            f"to_timestamp({busy.now + 30})",
        )
        assert again[0][0] <= 1


def test_busy_sinks_are_priced_at_refill_cost_then_refilled_within_budget(
    tmp_path: Path, prefect_harness: None
) -> None:
    """Busy traffic, 7 days (bench/rebalance.py runs 21): the fees loop prices the depleted,
    demanded sinks at their refill route's cost, the rebalance loop then refills them, most
    attempts move liquidity, none is below its gate and no day spends over its budget."""
    from flows.fees import fees

    with SimFleet("busy", workdir=tmp_path / "sim") as busy:
        path = busy.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
        start = busy.now
        busy.advance(HOUR_S)
        for _ in range(14):
            collect(config_path=str(path), now=busy.now)
            if (busy.now - start) % 86_400 < 12 * HOUR_S:
                fees(config_path=str(path), now=busy.now)
            rebalance(config_path=str(path), now=busy.now)
            busy.advance(12 * HOUR_S)
        collect(config_path=str(path), now=busy.now)
        rebalance(config_path=str(path), now=busy.now)  # reconcile the last jobs
    floors = _rows(path, "SELECT count(*) FROM fee_decisions WHERE reason = 'refill_floor'")
    assert floors[0][0] >= 1
    finished, moved = _rows(
        path,
        "SELECT count(*), count(*) FILTER (WHERE moved_msat > 0) FROM rebalance_attempts "
        "WHERE state IN ('succeeded', 'failed')",
    )[0]
    assert finished >= 3 and moved >= 0.6 * finished
    below = _rows(
        path,
        "SELECT count(*) FROM rebalance_attempts WHERE purpose = 'ev' AND "
        "expected_revenue_msat - opportunity_cost_msat < max_cost_msat",
    )
    assert below[0][0] == 0
    over = _rows(
        path,
        "SELECT count(*) FROM budget_ledger "
        "WHERE rebalance_spent_msat + onchain_spent_msat > budget_msat",
    )
    assert over[0][0] == 0
