"""The read copy: whole after a SIGKILL, not stopped by a read-write session on it, never seen
half-written by a reader, at most `publish_every_s` stale, described by `hiveops warehouse info`."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from hiveops.cli import main
from models.settings import load_settings
from models.warehouse_paths import quick_paths
from warehouse import db, readcopy

ROOT = Path(__file__).resolve().parents[1]
ALERT = (
    "INSERT INTO alerts (alert_id, raised_at, loop, kind, severity, message) "
    "VALUES (?, now(), 'collect', 'zero_snapshot', 'critical', 'x')"
)


def add_alerts(live: Path, n: int, prefix: str) -> None:
    with db.writer(live) as con:
        for i in range(n):
            con.execute(ALERT, [f"{prefix}-{i}"])


def copy_state(copy: Path) -> tuple[int, str]:
    con = duckdb.connect(str(copy), read_only=True)
    try:
        alerts = con.execute("select count(*) from alerts").fetchone()[0]
        run_id = con.execute("select run_id from read_copy_freshness").fetchone()[0]
    finally:
        con.close()
    return alerts, run_id


def child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("toml", "env"),
    [
        ("", {}),
        ('warehouse_path = "data/w.duckdb"\n', {}),
        ('warehouse_path = "w.duckdb"\n[warehouse]\nread_copy_path = "r/copy.duckdb"\n', {}),
        (
            '[warehouse]\nread_copy_path = "/tmp/x.duckdb"\npublish_every_s = 30\n'
            "lock_timeout_s = 2\n",
            {},
        ),
        (
            'warehouse_path = "a.duckdb"\n',
            {
                "HIVEOPS_WAREHOUSE_PATH": "b/live.duckdb",
                "HIVEOPS_WAREHOUSE__READ_COPY_PATH": "c.duckdb",
                "HIVEOPS_WAREHOUSE__PUBLISH_EVERY_S": "120",
                "HIVEOPS_WAREHOUSE__PUBLISH_MAX_AGE_S": "600",
                "HIVEOPS_WAREHOUSE__LOCK_TIMEOUT_S": "5",
            },
        ),
    ],
)
def test_quick_paths_agree_with_the_settings_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "hiveops.toml"
    config.write_text(toml)
    quick, settings = quick_paths(config), load_settings(config)
    assert quick.live == settings.warehouse_path
    assert quick.read_copy == settings.read_copy_path
    assert quick.lock_timeout_s == settings.warehouse.lock_timeout_s
    assert quick.publish_every_s == settings.warehouse.publish_every_s
    assert quick.publish_max_age_s == settings.warehouse.publish_max_age_s


def test_publish_copies_the_committed_warehouse_with_its_publish_row(warehouse_path: Path) -> None:
    add_alerts(warehouse_path, 3, "a")
    done = db.publish_now(warehouse_path, loop="collect", run_id="r1")
    assert done is not None and done.path == readcopy.default_read_copy_path(warehouse_path)
    assert copy_state(done.path) == (3, "r1")
    assert done.path.stat().st_size == done.size_bytes > 0
    assert not list(tmp for tmp in warehouse_path.parent.iterdir() if readcopy.TMP_MARK in tmp.name)


def test_a_finished_loop_cycle_publishes_when_the_writer_hands_the_file_back(
    warehouse_path: Path,
) -> None:
    copy = readcopy.default_read_copy_path(warehouse_path)
    with db.writer(warehouse_path, publish_for=("fees", "run-7")) as con:
        con.execute(ALERT, ["x"])
    deadline = time.monotonic() + 10
    while not copy.exists() and time.monotonic() < deadline:  # the idle release, 0.5 s later
        time.sleep(0.05)
    db.release_all()
    assert copy_state(copy) == (1, "run-7")


def test_sigkill_mid_publish_leaves_the_previous_copy_whole(warehouse_path: Path) -> None:
    add_alerts(warehouse_path, 2, "old")
    copy = db.publish_now(warehouse_path, loop="collect", run_id="old").path  # type: ignore[union-attr]
    add_alerts(warehouse_path, 5, "new")
    db.release_all()
    proc = child(
        f"""
        import os, time
        from pathlib import Path
        from warehouse import db, readcopy

        def half_then_hang(src, dst):  # stands in for a slow disk: half the bytes, then stuck
            data = Path(src).read_bytes()
            Path(dst).write_bytes(data[: len(data) // 2])
            print("half", flush=True)
            time.sleep(120)

        readcopy._copy_file = half_then_hang
        db.publish_now(Path({str(warehouse_path)!r}), loop="collect", run_id="killed")
        """
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "half"
    partial = [p for p in copy.parent.iterdir() if readcopy.TMP_MARK in p.name]
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < warehouse_path.stat().st_size
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert copy_state(copy) == (2, "old")  # whole and readable; the half file never had its name
    done = db.publish_now(warehouse_path, loop="collect", run_id="next")
    assert done is not None and copy_state(copy) == (7, "next")
    assert not [p for p in copy.parent.iterdir() if readcopy.TMP_MARK in p.name]


def test_a_read_write_session_on_the_copy_does_not_stop_the_next_publish(
    warehouse_path: Path,
) -> None:
    add_alerts(warehouse_path, 1, "a")
    copy = db.publish_now(warehouse_path, loop="collect", run_id="r1").path  # type: ignore[union-attr]
    session = child(
        f"""
        import duckdb, sys
        con = duckdb.connect({str(copy)!r})  # read-write, as a plain `duckdb FILE` opens it
        con.execute("create table scratch as select 42 x")
        con.execute("insert into alerts select * replace ('mine' as alert_id) from alerts")
        print("written", flush=True)
        sys.stdin.readline()
        con.execute("insert into scratch values (43)")
        con.close()
        print("closed", flush=True)
        """
    )
    assert session.stdout is not None and session.stdin is not None
    assert session.stdout.readline().strip() == "written"
    assert copy.with_name(copy.name + ".wal").exists()
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(copy), read_only=True)  # DuckDB: its holder locks readers out ...
    add_alerts(warehouse_path, 2, "b")
    done = db.publish_now(warehouse_path, loop="fees", run_id="r2")  # ... until the next publish
    assert done is not None
    assert copy_state(copy) == (3, "r2")
    con = duckdb.connect(str(copy), read_only=True)
    assert (
        con.execute("select count(*) from duckdb_tables() where table_name = 'scratch'").fetchone()[
            0
        ]
        == 0
    )
    con.close()
    session.stdin.write("\n")
    session.stdin.flush()
    assert session.stdout.readline().strip() == "closed"
    assert session.wait(timeout=10) == 0
    assert copy_state(copy) == (3, "r2")  # the session's close touched only its own old copy
    assert db.publish_now(warehouse_path, loop="fees", run_id="r3") is not None


def test_readers_connecting_during_publishes_never_fail(warehouse_path: Path) -> None:
    add_alerts(warehouse_path, 1, "a")
    copy = db.publish_now(warehouse_path, loop="collect", run_id="r0").path  # type: ignore[union-attr]
    readers = child(
        f"""
        import duckdb, select, sys
        ok = failed = 0
        errors, seen = set(), set()
        print("ready", flush=True)
        while not select.select([sys.stdin], [], [], 0)[0]:  # until the test says stop
            try:
                con = duckdb.connect({str(copy)!r}, read_only=True)
                seen.add(con.execute("select run_id from read_copy_freshness").fetchone()[0])
                con.close()
                ok += 1
            except Exception as exc:
                failed += 1
                errors.add(str(exc)[:120])
        print(ok, failed, len(seen), sorted(errors), flush=True)
        """
    )
    assert readers.stdout is not None and readers.stdin is not None
    assert readers.stdout.readline().strip() == "ready"
    published = 0
    end = time.monotonic() + 3
    while published < 6 or time.monotonic() < end:
        add_alerts(warehouse_path, 50, f"p{published}")
        assert db.publish_now(warehouse_path, loop="collect", run_id=f"p{published}")
        published += 1
    readers.stdin.write("stop\n")
    readers.stdin.flush()
    ok, failed, seen, *errors = readers.stdout.readline().split(" ", 3)
    assert readers.wait(timeout=30) == 0
    assert int(failed) == 0, errors
    assert int(ok) >= 5 and int(seen) > 1


def test_publish_every_s_bounds_how_often_it_copies(tmp_path: Path) -> None:
    config = tmp_path / "hiveops.toml"
    config.write_text('warehouse_path = "w.duckdb"\n[warehouse]\npublish_every_s = 3600\n')
    settings = load_settings(config)
    live = settings.warehouse_path
    add_alerts(live, 1, "a")
    first = db.publish_now(live, loop="collect", run_id="r1", force=False)
    assert first is not None and first.path == settings.read_copy_path
    add_alerts(live, 1, "b")
    assert db.publish_now(live, loop="fees", run_id="r2", force=False) is None
    assert copy_state(settings.read_copy_path) == (1, "r1")
    os.utime(settings.read_copy_path, (time.time() - 3601, time.time() - 3601))
    assert db.publish_now(live, loop="fees", run_id="r3", force=False) is not None
    assert copy_state(settings.read_copy_path) == (2, "r3")


def test_a_publish_costing_over_a_tenth_of_its_run_waits_until_the_copy_is_old() -> None:
    config = readcopy.CopyConfig(Path("c.duckdb"), every_s=0, max_age_s=1800)
    assert readcopy.skip_reason(None, config, run_s=1.0, last_s=5.0) is None  # no copy yet
    assert readcopy.skip_reason(60, config, run_s=10.0, last_s=0.9) is None  # 9 %: every run
    reason = readcopy.skip_reason(60, config, run_s=10.0, last_s=1.5)  # 15 %: less often
    assert reason is not None and "publish_max_age_s = 1800" in reason
    assert readcopy.skip_reason(1801, config, run_s=10.0, last_s=1.5) is None  # bounded
    assert readcopy.skip_reason(60, config, run_s=None, last_s=1.5) is None  # cost unknown
    floor = readcopy.CopyConfig(Path("c.duckdb"), every_s=300)
    assert readcopy.skip_reason(299, floor, run_s=100.0, last_s=0.1) is not None


def test_the_last_publish_time_is_read_from_the_live_row_and_the_copy_mtime(
    warehouse_path: Path,
) -> None:
    done = db.publish_now(warehouse_path, loop="collect", run_id="r1")
    assert done is not None
    with db.writer(warehouse_path) as con:
        took_s = readcopy.last_publish_s(con, done.path)
    assert took_s is not None and 0 <= took_s <= done.total_s + 0.05
    with db.writer(warehouse_path) as con:  # a run far longer than the publish: it publishes
        assert readcopy.publish(con, warehouse_path, loop="fees", run_id="r2", run_s=3600.0)
    with db.writer(warehouse_path) as con:  # the last one took longer than a tenth of 0.01 s
        assert readcopy.publish(con, warehouse_path, loop="fees", run_id="r3", run_s=0.01) is None


def test_a_failed_publish_keeps_the_old_copy_and_frees_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    config = tmp_path / "hiveops.toml"
    config.write_text(
        'warehouse_path = "w.duckdb"\n[warehouse]\nread_copy_path = "not-a-dir/copy.duckdb"\n'
    )
    live = load_settings(config).warehouse_path  # registers the config for the writer layer
    with caplog.at_level(logging.ERROR, logger="hiveops.warehouse"):
        with db.writer(live, publish_for=("collect", "r1")) as con:
            con.execute(ALERT, ["a"])
        db.release_all()
    assert "not published" in caplog.text
    with db.reader(live) as con:  # the lock was handed back; the failed publish left no row
        assert con.execute("select count(*) from read_copy_publishes").fetchone()[0] == 0


def test_warehouse_info_names_both_files_and_the_publishing_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hiveops.toml"
    config.write_text('warehouse_path = "w.duckdb"\n')
    assert main(["warehouse", "info", "--config", str(config)]) == 0
    assert "does not exist yet" in capsys.readouterr().out
    add_alerts(tmp_path / "w.duckdb", 1, "a")
    assert main(["warehouse", "publish", "--config", str(config)]) == 0
    assert "published" in capsys.readouterr().out
    assert main(["warehouse", "info", "--config", str(config), "--json"]) == 0
    lock = json.loads(capsys.readouterr().out)["live"]["writer_lock"]
    assert lock["held"] and lock["holder"].startswith(f"pid {os.getpid()} ")  # kept 0.5 s
    db.release_all()
    assert main(["warehouse", "info", "--config", str(config), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    live, copy = info["live"], info["read_copy"]
    assert live["path"] == str(tmp_path / "w.duckdb") and live["size_bytes"] > 0
    assert copy["path"] == str(tmp_path / "w.read.duckdb") and copy["size_bytes"] > 0
    assert copy["loop"] == "manual" and copy["run_id"].startswith("cli-")
    assert 0 <= copy["age_s"] < 60 and copy["publish_every_s"] == 0
    assert copy["publish_max_age_s"] == 1800
    assert main(["warehouse", "info", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "published" in text and "by manual run cli-" in text and "writer lock free" in text


def test_every_view_can_be_read_from_the_copy(warehouse_path: Path) -> None:
    copy = db.publish_now(warehouse_path, loop="collect", run_id="r1").path  # type: ignore[union-attr]
    con = duckdb.connect(str(copy), read_only=True)
    try:
        views = [
            row[0]
            for row in con.execute(
                "select view_name from duckdb_views() where not internal and schema_name = 'main'"
            ).fetchall()
        ]
        assert "read_copy_freshness" in views and len(views) > 5
        for view in views:
            con.execute(f'select * from "{view}" limit 1').fetchall()
    finally:
        con.close()


def test_a_run_with_nodes_still_running_leaves_the_publish_to_its_last_node(
    warehouse_path: Path,
) -> None:
    assert db.publish_now(warehouse_path, loop="collect", run_id="r0")  # a copy exists
    now = datetime.now(UTC)
    with db.writer(warehouse_path) as con:
        for node in ("n1", "n2"):
            db.run(
                con,
                "common.heartbeat_start",
                run_id="r1",
                loop="collect",
                node=node,
                started_at=now,
            )
        db.run(
            con,
            "common.heartbeat_finish",
            run_id="r1",
            loop="collect",
            node="n1",
            finished_at=now,
            status="ok",
            rows_written=0,
            decisions=0,
            detail=None,
        )
        assert readcopy.publish(con, warehouse_path, loop="collect", run_id="r1") is None
        db.run(
            con,
            "common.heartbeat_finish",
            run_id="r1",
            loop="collect",
            node="n2",
            finished_at=now,
            status="ok",
            rows_written=0,
            decisions=0,
            detail=None,
        )
        assert readcopy.publish(con, warehouse_path, loop="collect", run_id="r1") is not None
