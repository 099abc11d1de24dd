"""A reader cannot fail a loop: sessions on the read copy while collect, fees and rebalance run
against the simulator, as real Prefect flow runs."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from flows.collect import collect
from flows.fees import fees
from flows.rebalance import rebalance
from lnsim.simfleet import SimFleet
from models.settings import load_settings
from warehouse import db

ROOT = Path(__file__).resolve().parents[1]
HOUR_S = 3600
LOCK_TIMEOUT_S = 1.0
TASK_ATTEMPTS = 3  # the warehouse tasks' retries=2, plus the first try


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def fresh(copy: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(copy), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


@pytest.fixture
def audit(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        yield fleet


def test_sessions_on_the_copy_delay_no_loop_and_no_loop_opens_the_copy(
    audit: SimFleet, tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    with config.open("a") as f:
        # publish_max_age_s = 0: every run publishes, however loaded the test machine
        f.write(f"\n[warehouse]\nlock_timeout_s = {LOCK_TIMEOUT_S}\npublish_max_age_s = 0\n")
    settings = load_settings(config)
    copy = settings.read_copy_path
    collect(config_path=str(config), now=audit.now)
    db.release_all()
    assert copy.exists()

    opened: list[str] = []  # what the loops (not this test's own reads) open
    recording = [False]
    real_connect = duckdb.connect

    def spy(database: str = ":memory:", *args, **kwargs):  # type: ignore[no-untyped-def]
        if recording[0] and database != ":memory:":
            opened.append(str(Path(database).resolve()))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", spy)
    records = Records()
    logging.getLogger("hiveops.warehouse").addHandler(records)
    logging.getLogger("hiveops.warehouse").setLevel(logging.DEBUG)
    session = child(
        f"""
        import duckdb, select, sys, time
        con = duckdb.connect({str(copy)!r}, read_only=True)  # a notebook left open
        first = con.execute("select count(*) from heartbeats").fetchone()[0]
        print("open", flush=True)
        queries = changed = 0
        while not select.select([sys.stdin], [], [], 0.2)[0]:
            changed += con.execute("select count(*) from heartbeats").fetchone()[0] != first
            queries += 1
        print(queries, changed, flush=True)
        """
    )
    try:
        assert session.stdout is not None and session.stdin is not None
        assert session.stdout.readline().strip() == "open"
        opened_at = time.monotonic()
        for loop in (collect, fees, rebalance):
            audit.advance(HOUR_S)
            started = time.monotonic()
            recording[0] = True
            loop(config_path=str(config), now=audit.now)  # raises if the loop failed
            db.release_all()  # hand the file back now: this run publishes
            recording[0] = False
            last = fresh(copy, "select loop, run_id from read_copy_freshness")[0]
            assert last[0] == loop.name, (
                f"{loop.name} did not publish ({time.monotonic() - started:.1f} s)"
            )
        while time.monotonic() - opened_at < LOCK_TIMEOUT_S * TASK_ATTEMPTS + 1:
            time.sleep(0.2)
        held_s = time.monotonic() - opened_at
        session.stdin.write("stop\n")
        session.stdin.flush()
        queries, changed = map(int, session.stdout.readline().split())
        assert session.wait(timeout=30) == 0
    finally:
        if session.poll() is None:
            session.kill()
        logging.getLogger("hiveops.warehouse").removeHandler(records)
    assert held_s > LOCK_TIMEOUT_S * TASK_ATTEMPTS
    assert queries > 0 and changed == 0  # the session read its own consistent copy throughout
    waits = [m for m in records.messages if "waiting" in m or "retrying" in m]
    assert waits == [], waits  # no loop waited for a lock
    assert str(copy.resolve()) not in opened  # the loops never open the copy ...
    assert str(settings.warehouse_path.resolve()) in opened  # ... (the spy saw their opens)
    loops = {row[0] for row in fresh(copy, "select loop from heartbeats where status = 'ok'")}
    assert {"collect", "fees", "rebalance"} <= loops

    # A read-write session on the copy, with a write, does not stop the next loop's publish.
    rw = child(
        f"""
        import duckdb, sys
        con = duckdb.connect({str(copy)!r})
        con.execute("create table scratch as select 1 x")
        print("written", flush=True)
        sys.stdin.readline()
        con.close()
        """
    )
    try:
        assert rw.stdout is not None and rw.stdin is not None
        assert rw.stdout.readline().strip() == "written"
        audit.advance(HOUR_S)
        recording[0] = True
        collect(config_path=str(config), now=audit.now)
        db.release_all()
        recording[0] = False
        assert str(copy.resolve()) not in opened
        last = fresh(copy, "select loop, run_id from read_copy_freshness")[0]
        assert last[0] == "collect"
        assert fresh(copy, "select count(*) from duckdb_tables() where table_name = 'scratch'") == [
            (0,)
        ]
        rw.stdin.write("\n")
        rw.stdin.flush()
        assert rw.wait(timeout=30) == 0
    finally:
        if rw.poll() is None:
            rw.kill()
