"""The read copy: a whole, consistent warehouse file that ad-hoc readers open and no loop locks.

DuckDB lets one process write a file or many read it, never both (docs/WAREHOUSE.md), so an open
notebook on the live file stalls every loop. Instead the process that holds the writer lock
checkpoints the live file and copies it, bytes only, to a temporary file beside the copy, then
renames it over the copy. A rename is atomic: a reader opens either the old copy or the new one,
never a partial file, and one that holds the old copy open keeps reading it. A crash mid-copy
leaves the old copy in place and a temporary file that the next publish removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from models.warehouse_paths import default_read_copy_path
from warehouse.queries import sql

log = logging.getLogger("hiveops.warehouse")

TMP_MARK = ".publishing-"


class PublishError(RuntimeError):
    """The copy could not be published; the previous copy is untouched."""


# A publish may cost at most this share of the loop run it ends (issue #23: past it, publish
# less often); beyond publish_max_age_s the copy is republished whatever it costs.
COST_SHARE = 0.10


@dataclass(frozen=True)
class CopyConfig:
    path: Path
    every_s: float = 0.0
    max_age_s: float = 1_800.0


@dataclass(frozen=True)
class Published:
    path: Path
    published_at: datetime
    loop: str
    run_id: str
    size_bytes: int
    checkpoint_s: float
    copy_s: float
    total_s: float


def config_for(db_path: Path) -> CopyConfig:
    """The copy's path and cadence from the settings this process loaded for `db_path`.

    Every loop loads its settings before it writes (models.settings keeps what it loaded), so the
    writer layer publishes for all loops without each flow passing the config; a process that
    loaded none (a test, a script) gets the defaults.
    """
    from models.settings import loaded_warehouse_config

    config = loaded_warehouse_config(db_path)
    if config is None:
        return CopyConfig(path=default_read_copy_path(db_path))
    return CopyConfig(
        path=Path(config.read_copy_path or default_read_copy_path(db_path)),
        every_s=config.publish_every_s,
        max_age_s=config.publish_max_age_s,
    )


def last_publish_s(con: duckdb.DuckDBPyConnection, copy: Path) -> float | None:
    """How long the last publish took: from its row's time to the copy's mtime (its last write),
    read without opening the copy."""
    row = con.execute(sql("readcopy.last_publish")).fetchone()
    if row is None or not copy.exists():
        return None
    took_s = copy.stat().st_mtime - row[0].timestamp()
    return took_s if 0 <= took_s < 3_600 else None


def skip_reason(
    age_s: float | None, config: CopyConfig, run_s: float | None, last_s: float | None
) -> str | None:
    """Why this run should not publish, or None. `age_s` None: there is no copy yet."""
    if age_s is None:
        return None
    if age_s < config.every_s:
        return f"copy is {age_s:.0f} s old, publish_every_s = {config.every_s:g}"
    costly = run_s is not None and last_s is not None and last_s > COST_SHARE * run_s
    if costly and age_s < config.max_age_s:
        return (
            f"a publish takes {last_s:.2f} s, over {COST_SHARE:.0%} of this {run_s:.1f} s run; "
            f"copy is {age_s:.0f} s old, publish_max_age_s = {config.max_age_s:g}"
        )
    return None


def _copy_file(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)  # sendfile on Linux: no user-space buffer
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)  # a power cut after the rename must not leave an empty copy
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    con: duckdb.DuckDBPyConnection,
    db_path: Path,
    *,
    loop: str,
    run_id: str,
    config: CopyConfig | None = None,
    run_s: float | None = None,
    force: bool = False,
) -> Published | None:
    """Publish the copy of `db_path`. The caller holds the writer lock and `con` read-write.

    `run_s`: how long the loop run this publish ends has taken. Returns None when `skip_reason`
    says this run should leave the copy as it is (bounded staleness).
    """
    db_path = Path(db_path).resolve()
    config = config or config_for(db_path)
    copy = config.path
    started = time.monotonic()
    now = datetime.now(UTC)
    if not force:
        # The copy's mtime (its last write, kept by the rename) says when it was published; a
        # row in the live file could name a publish that was killed before its rename.
        age_s = now.timestamp() - copy.stat().st_mtime if copy.exists() else None
        reason = skip_reason(age_s, config, run_s, last_publish_s(con, copy))
        running = con.execute(sql("readcopy.run_unfinished"), {"run_id": run_id}).fetchone()
        if age_s is not None and running and running[0] > 0:
            # collect starts every node's heartbeat first: its last node's finish publishes
            reason = f"{running[0]} node(s) of this run still running"
        if reason:
            log.info("read copy %s not republished for %s run %s: %s", copy, loop, run_id, reason)
            return None
    copy.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        sql("readcopy.record_publish"),
        {"published_at": now, "loop": loop, "run_id": run_id, "pid": os.getpid()},
    )
    try:
        con.execute("CHECKPOINT")
        checkpointed = time.monotonic()
        wal = db_path.with_name(db_path.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise PublishError(f"CHECKPOINT left {wal} non-empty (an open transaction?)")
        for stale in copy.parent.glob(copy.name + TMP_MARK + "*"):
            stale.unlink(missing_ok=True)  # a publisher killed mid-copy; we hold the lock now
        tmp = copy.with_name(f"{copy.name}{TMP_MARK}{os.getpid()}")
        _copy_file(db_path, tmp)
        copied = time.monotonic()
        # A read-write session on the old copy writes `<copy>.wal` beside it; DuckDB would refuse
        # to open the new copy next to a WAL made for another version of the file. That session
        # keeps its open WAL and its (now replaced) copy; its writes were never the warehouse's.
        copy.with_name(copy.name + ".wal").unlink(missing_ok=True)
        os.replace(tmp, copy)
        _fsync_dir(copy.parent)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute(sql("readcopy.forget_publish"), {"published_at": now, "pid": os.getpid()})
        raise
    done = time.monotonic()
    result = Published(
        path=copy,
        published_at=now,
        loop=loop,
        run_id=run_id,
        size_bytes=copy.stat().st_size,
        checkpoint_s=checkpointed - started,
        copy_s=copied - checkpointed,
        total_s=done - started,
    )
    log.info(
        "published read copy %s (%.1f MB) in %.2f s for %s run %s",
        copy,
        result.size_bytes / 1e6,
        result.total_s,
        loop,
        run_id,
    )
    return result


def open_copy(copy: Path, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the copy; never waits on any loop. With `config` (hiveops sql's
    hardening) the settings are locked once the session's own are made."""
    if not copy.exists():
        raise FileNotFoundError(
            f"read copy {copy} does not exist yet; the next writing loop run publishes it "
            f"(or run `hiveops warehouse publish`); `--live` reads the live file"
        )
    con = duckdb.connect(str(copy), read_only=True, config=dict(config or {}))
    con.execute("SET TimeZone = 'UTC'")
    if config:
        con.execute("SET lock_configuration = true")
    return con


def copy_publish(copy: Path) -> dict[str, Any]:
    """What the copy says about itself: when it was published and by which run."""
    con = open_copy(copy)
    try:
        row = con.execute(sql("readcopy.last_publish")).fetchone()
    finally:
        con.close()
    if row is None:
        return {}
    published_at, loop, run_id, pid = row
    return {"published_at": published_at, "loop": loop, "run_id": run_id, "pid": pid}
