"""Orchestration-side faults: what happens to the warehouse when the run, the disk or another
process misbehaves. Same three checks as the node matrix: a specific error (or a completed
run), nothing stored lost or duplicated, and a run after the fault clears stores what a clean
run stores."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.collect import collect
from flows.common import LoopFailed
from tests.faults.harness import (
    NODE,
    RPC,
    T1,
    T2,
    World,
    assert_kept,
    at,
    copy_warehouse,
    dump,
    no_traceback,
    write_config,
)
from warehouse import db

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("childwriter.py")


def child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def killed(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]


def assert_recovers(world: World, cfg: Path, wh: Path, before: dict[str, list]) -> None:
    collect(config_path=str(cfg), now=T2)
    after = dump(wh)
    assert_kept(before, after)
    ref = world.reference
    assert after["forwards"] == ref["forwards"]
    for table in ("node_snapshots", "channel_snapshots"):
        assert at(after[table], 1, ref[table][0][1]) == ref[table], table


@dataclass(frozen=True)
class KillCase:
    id: str
    args: Callable[[World, Path], list[str]]
    fresh: bool = False  # start from an empty file instead of the baseline


KILLS = [
    KillCase(
        "sigkill_inside_snapshot_transaction",
        lambda w, wh: ["snapshot_transaction", str(wh), str(w.fleet.socket_paths[NODE]), str(T1)],
    ),
    KillCase(
        "sigkill_during_bulk_forwards_insert",
        lambda w, wh: ["bulk_forwards", str(wh), w.fleet.node_ids[NODE]],
    ),
    KillCase("sigkill_mid_migration", lambda w, wh: ["migration", str(wh)], fresh=True),
]


@pytest.mark.parametrize("case", KILLS, ids=[k.id for k in KILLS])
def test_sigkill_mid_write(world: World, case: KillCase, tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    if not case.fresh:
        copy_warehouse(world.baseline, wh)
    before = dump(wh) if not case.fresh else {}
    killed(child(*case.args(world, wh)))
    # The next open replays DuckDB's log: committed work is there, the killed write is not.
    during = dump(wh) if not case.fresh else {}
    assert_kept(before, during)
    if not case.fresh:
        assert during == before  # the killed transaction left nothing behind
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    assert_recovers(world, cfg, wh, during)


def test_two_writers_at_once(world: World, tmp_path: Path) -> None:
    """Another process writes the warehouse in a tight loop while collect runs."""
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    other = child("hammer", str(wh), "4")
    assert other.stdout is not None and other.stdout.readline().strip() == "writing"
    collect(config_path=str(cfg), now=T1)
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err[-2000:]
    written = int(out.split()[-1])
    assert written > 0
    during = dump(wh)
    assert_kept(before, during)
    assert during["forwards"] == world.reference["forwards"]
    with db.reader(wh) as con:
        alerts = con.execute("SELECT count(*) FROM alerts WHERE loop = 'hammer'").fetchone()
    assert alerts == (written,)
    assert_recovers(world, cfg, wh, during)


def hold_open(wh: Path, seconds: float) -> subprocess.Popen[str]:
    """A user's `duckdb` shell on the warehouse file, open read-write."""
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True);"
        " time.sleep(float(sys.argv[2]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(wh), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    return proc


def test_warehouse_held_by_a_duckdb_shell(world: World, tmp_path: Path) -> None:
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    cfg.write_text(cfg.read_text() + "[warehouse]\nlock_timeout_s = 1\n")
    shell = hold_open(wh, 60)
    try:
        with pytest.raises(db.WarehouseLocked) as locked:
            collect(config_path=str(cfg), now=T1)
    finally:
        shell.kill()
        shell.wait()
    message = str(locked.value)
    no_traceback(message)
    assert f"warehouse {wh} is held by process {shell.pid}; close that process" in message
    during = dump(wh)
    assert during == before
    assert_recovers(world, cfg, wh, during)


def test_warehouse_held_briefly_is_waited_for(world: World, tmp_path: Path) -> None:
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    shell = hold_open(wh, 1.5)
    collect(config_path=str(cfg), now=T1)  # waits out the shell within lock_timeout_s
    shell.wait()
    during = dump(wh)
    assert_kept(before, during)
    assert during["forwards"] == world.reference["forwards"]


def test_disk_full_mid_run(world: World, tmp_path: Path) -> None:
    """Every write past 16 KiB of any file fails with EFBIG, as on a full disk."""
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, hard))
    try:
        with pytest.raises((LoopFailed, db.WarehouseWriteFailed)) as failed:
            collect(config_path=str(cfg), now=T1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    message = str(failed.value)
    no_traceback(message)
    assert f"warehouse {wh}: a write failed" in message, message
    assert "Is the disk full" in message
    during = dump(wh)
    assert_kept(before, during)
    assert_recovers(world, cfg, wh, during)


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def bad_block(path: Path) -> None:
    """Damaged blocks inside an intact file: 64 KiB of noise at the start of every 256 KiB block
    (DuckDB's block size) past the first quarter, so a block the run reads is among them whatever
    the layout (one block in the middle may be free space once migrations add tables)."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        for offset in range(size // 4, size, 256 * 1024):
            f.seek(offset)
            f.write(os.urandom(min(64 * 1024, size - offset)))


@pytest.mark.parametrize("damage", [garbage, truncate, bad_block], ids=lambda f: f.__name__)
def test_corrupt_warehouse_at_start(
    world: World, damage: Callable[[Path], None], tmp_path: Path
) -> None:
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    damage(wh)
    damaged = wh.read_bytes()
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    with pytest.raises((LoopFailed, db.WarehouseCorrupt)) as failed:
        collect(config_path=str(cfg), now=T1)
    message = str(failed.value)
    no_traceback(message)
    assert f"warehouse {wh} cannot be read" in message, message
    assert "Restore it from a backup" in message
    db.release_all()
    if damage is not bad_block:  # refused at open: not one byte written
        assert wh.read_bytes() == damaged, "hiveops wrote to a file it could not read"
    wal = wh.with_name(wh.name + ".wal")  # the operator restores the backup, as told
    if wal.exists():
        wal.unlink()
    copy_warehouse(world.baseline, wh)
    assert_recovers(world, cfg, wh, before)


@pytest.mark.parametrize("jump_s", [-6 * 3600, 40 * 86_400], ids=["back_6h", "forward_40d"])
def test_clock_jump(world: World, jump_s: int, tmp_path: Path) -> None:
    """A run whose clock stepped (NTP, a VM restored) stores what it saw, under its own time,
    and the next run at the right time is unaffected."""
    wh = copy_warehouse(world.baseline, tmp_path / "w.duckdb")
    before = dump(wh)
    cfg = write_config(tmp_path / "hiveops.toml", world.fleet, world.proxy.path, wh, RPC)
    collect(config_path=str(cfg), now=T1 + jump_s)
    during = dump(wh)
    assert_kept(before, during)
    assert during["forwards"] == world.reference["forwards"]
    assert_recovers(world, cfg, wh, during)
