"""One DuckDB file, shared safely by concurrent flow runs.

DuckDB lets one process write a file at a time, and a second process that opens it fails at once
with "Could not set lock". hiveops serialises its own writers with an advisory lock file (which
also works between threads: each open file description is its own flock holder) and then retries
DuckDB's own lock for foreign holders (a `duckdb` shell, `hiveops sql`). Both waits are bounded
and logged, and the final error names the file, the holder and the fix.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from warehouse import readcopy
from warehouse.migrate import migrate
from warehouse.queries import sql

if TYPE_CHECKING:  # polars is imported where a frame is made: `hiveops sql` never pays for it
    import polars as pl

log = logging.getLogger("hiveops.warehouse")

_PID_RE = re.compile(r"PID (\d+)")
_migrated: set[Path] = set()
_migrate_lock = threading.Lock()


class WarehouseError(RuntimeError):
    """A warehouse problem an operator has to act on; the message names the file and the fix."""


class WarehouseLocked(WarehouseError):
    """The warehouse stayed locked by another writer for longer than the configured bound."""


class WarehouseCorrupt(WarehouseError):
    """The file is not a readable DuckDB database (truncated, overwritten, bad blocks)."""


class WarehouseWriteFailed(WarehouseError):
    """The operating system refused a write (disk full, file size limit, I/O error)."""


_CORRUPT_MARKS = (
    "not a valid duckdb database file",
    "could not read enough bytes",
    "corrupt database file",
    "checksum",
)
_WRITE_MARKS = ("could not write", "no space left", "file too large", "disk quota exceeded")


def classify(exc: BaseException, db_path: Path) -> WarehouseError | None:
    """The operator-facing error for a DuckDB failure that is about the file, not the SQL."""
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lower = text.lower()
    if any(mark in lower for mark in _CORRUPT_MARKS):
        return WarehouseCorrupt(
            f"warehouse {db_path} cannot be read: {text}. The file is corrupt or truncated (a "
            f"failed disk, a partial copy); hiveops stopped using it. Restore it from a backup "
            f"(and remove {db_path.name}.wal beside it, this run's log), or move both aside to "
            f"start a new warehouse"
        )
    if any(mark in lower for mark in _WRITE_MARKS):
        return WarehouseWriteFailed(
            f"warehouse {db_path}: a write failed: {text}. Is the disk full or the file size "
            f"limited? The failed write was rolled back, nothing stored before it is lost; free "
            f"space on {db_path.parent} and run the loop again"
        )
    return None


def _lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".writer-lock")


def _holder(lock_file: Path) -> str:
    try:
        return lock_file.read_text().strip() or "unknown holder"
    except OSError:
        return "unknown holder"


def _acquire_writer_lock(db_path: Path, timeout_s: float, who: str) -> int:
    """flock `<db>.writer-lock` within `timeout_s`; return the descriptor that holds it."""
    lock_file = _lock_path(db_path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    delay_s = 0.02
    warned = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(lock_file)
                os.close(fd)
                raise WarehouseLocked(
                    f"warehouse {db_path} is locked by {holder} for more than "
                    f"{timeout_s:.0f}s; wait for that run to finish, or raise "
                    f"warehouse.lock_timeout_s"
                ) from None
            if not warned:
                log.info("warehouse %s busy (%s); waiting", db_path, _holder(lock_file))
                warned = True
            time.sleep(delay_s)
            delay_s = min(delay_s * 1.5, 0.5)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} ({who})".encode(), 0)
    return fd


@dataclass
class _Held:
    """This process's writer connection, kept briefly between writes.

    Opening a DuckDB file costs ~35 ms (catalog load, checkpoint on close); a loop makes dozens
    of small writes. The connection and the lock stay held until IDLE_RELEASE_S pass without a
    write, so other processes still get their turn within a second.
    """

    con: duckdb.DuckDBPyConnection
    fd: int
    timer: threading.Timer | None = None
    # (loop, run_id) of a loop cycle that finished here: the read copy is published, still under
    # the writer lock, when this process hands the file back.
    publish_for: tuple[str, str] | None = None


IDLE_RELEASE_S = 0.5
DEFAULT_LOCK_TIMEOUT_S = 60.0
_lock_timeout_s = DEFAULT_LOCK_TIMEOUT_S


def set_lock_timeout(seconds: float) -> None:
    """The bound for every wait on the warehouse that names none (warehouse.lock_timeout_s):
    a loop's heartbeats and alerts wait no longer than its own writes."""
    global _lock_timeout_s
    _lock_timeout_s = float(seconds)


_held: dict[Path, _Held] = {}
_held_lock = threading.RLock()


def _release(db_path: Path) -> None:
    with _held_lock:
        held = _held.pop(db_path, None)
        if held is None:
            return
        if held.timer is not None:
            held.timer.cancel()
        try:
            if held.publish_for is not None:
                _publish_quietly(held.con, db_path, *held.publish_for)
            held.con.close()
        except duckdb.Error as exc:
            log.warning("warehouse %s: closing after a failed write: %s", db_path, exc)
        finally:
            os.close(held.fd)  # closing the descriptor releases the flock


# When each loop run this process saw began (monotonic), so a publish knows its share of the run.
_run_started: dict[str, float] = {}


def note_run_start(run_id: str) -> None:
    """Called at a loop run's first write (its heartbeat-start)."""
    with _held_lock:
        _run_started.setdefault(run_id, time.monotonic())
        while len(_run_started) > 64:
            _run_started.pop(next(iter(_run_started)))


def _publish_quietly(con: duckdb.DuckDBPyConnection, db_path: Path, loop: str, run_id: str) -> None:
    """A failed publish leaves the previous copy and must not fail the loop that wrote."""
    started = _run_started.get(run_id)
    run_s = time.monotonic() - started if started is not None else None
    try:
        readcopy.publish(con, db_path, loop=loop, run_id=run_id, run_s=run_s)
    except Exception:
        log.exception("read copy of %s not published (the previous copy stays)", db_path)


def release_all() -> None:
    """Close every held connection now (tests, shutdown, before handing the file to others).

    Under the lock, so a release (and its publish) running on the idle timer is finished first.
    """
    with _held_lock:
        for path in list(_held):
            _release(path)


atexit.register(release_all)


def _connect(db_path: Path, *, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
    return connect_with(db_path, read_only=read_only, deadline=deadline, config=None)


def connect_with(
    db_path: Path, *, read_only: bool, deadline: float, config: dict[str, Any] | None
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (until `deadline`) for a foreign holder of DuckDB's lock."""
    delay_s = 0.05
    while True:
        try:
            con = duckdb.connect(str(db_path), read_only=read_only, config=config or {})
            con.execute("SET TimeZone = 'UTC'")
            return con
        except duckdb.Error as exc:
            if not isinstance(exc, duckdb.IOException) or "lock" not in str(exc).lower():
                raise classify(exc, db_path) or exc from exc
            if delay_s == 0.05:
                log.info("warehouse %s held by another process (%s); retrying", db_path, exc)
            if time.monotonic() >= deadline:
                pid = _PID_RE.search(str(exc))
                holder = f"process {pid.group(1)}" if pid else "another process"
                raise WarehouseLocked(
                    f"warehouse {db_path} is held by {holder}; close that process (a duckdb "
                    f"shell or another hiveops run) or retry later"
                ) from exc
            time.sleep(delay_s)
            delay_s = min(delay_s * 1.5, 1.0)


def ensure_migrated(db_path: Path, timeout_s: float | None = None) -> None:
    """Apply pending migrations once per process per file."""
    db_path = db_path.resolve()
    timeout_s = _lock_timeout_s if timeout_s is None else timeout_s
    with _migrate_lock:
        if db_path in _migrated:
            return
        with writer(db_path, timeout_s=timeout_s, who="migrate", _skip_migrate=True) as con:
            migrate(con)
        _migrated.add(db_path)


@contextmanager
def writer(
    db_path: Path,
    *,
    timeout_s: float | None = None,
    who: str = "hiveops",
    publish_for: tuple[str, str] | None = None,
    _skip_migrate: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write cursor for the block; migrations applied first.

    Writers inside one process take turns (a re-entrant lock); writers in other processes wait
    on the lock file. `publish_for=(loop, run_id)` marks the end of a loop's cycle: the read copy
    is published before the connection and the lock are handed back.
    """
    db_path = Path(db_path).resolve()
    timeout_s = _lock_timeout_s if timeout_s is None else timeout_s
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if not _skip_migrate:
        ensure_migrated(db_path, timeout_s)
    with _held_lock:
        held = _held.get(db_path)
        if held is None:
            fd = _acquire_writer_lock(db_path, timeout_s, who)
            try:
                con = _connect(db_path, read_only=False, deadline=time.monotonic() + timeout_s)
            except BaseException:
                os.close(fd)
                raise
            held = _held[db_path] = _Held(con, fd)
        elif held.timer is not None:
            held.timer.cancel()
        if publish_for is not None:
            held.publish_for = publish_for
        cursor = held.con.cursor()
        failed: WarehouseError | None = None
        try:
            yield cursor
        except duckdb.Error as exc:
            failed = classify(exc, db_path)
            if failed is None:
                raise
            raise failed from exc
        finally:
            cursor.close()
            if failed is not None:
                # Never hand a connection that failed on its file to the next write, and
                # never checkpoint into a file that cannot be read.
                if isinstance(failed, WarehouseCorrupt):
                    with contextlib.suppress(duckdb.Error):
                        held.con.execute("PRAGMA disable_checkpoint_on_shutdown")
                _release(db_path)
            else:
                held.timer = threading.Timer(IDLE_RELEASE_S, _release, args=(db_path,))
                # Not a daemon: at exit Python waits for it, so DuckDB closes cleanly rather
                # than being torn down mid-close.
                held.timer.daemon = False
                held.timer.start()


def publish_now(
    db_path: Path,
    *,
    loop: str,
    run_id: str,
    config: readcopy.CopyConfig | None = None,
    timeout_s: float = 60.0,
    force: bool = True,
) -> readcopy.Published | None:
    """Publish the read copy now, under the writer lock (`hiveops warehouse publish`, benches)."""
    db_path = Path(db_path).resolve()
    with writer(db_path, timeout_s=timeout_s, who=f"{loop} publish") as con:
        return readcopy.publish(con, db_path, loop=loop, run_id=run_id, config=config, force=force)


@contextmanager
def reader(db_path: Path, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; waits (bounded) while a writer holds the file."""
    db_path = Path(db_path).resolve()
    if not db_path.exists():
        raise FileNotFoundError(
            f"warehouse {db_path} does not exist yet; run `hiveops run collect` first"
        )
    # DuckDB refuses a read-only open of a file this process holds read-write: hand it back
    # first (between writes, so no write is cut short).
    _release(db_path)
    timeout_s = _lock_timeout_s if timeout_s is None else timeout_s
    con = _connect(db_path, read_only=True, deadline=time.monotonic() + timeout_s)
    try:
        yield con
    finally:
        con.close()


def stage(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, key: list[str] | None = None) -> int:
    """Register `frame` as `staged`, deduplicated on `key` (last row wins).

    DuckDB's upserts silently keep an arbitrary row when one batch repeats a key, so every batch
    is made unique before it reaches them.
    """
    if key:
        frame = frame.unique(subset=key, keep="last", maintain_order=True)
    con.register("staged", frame.to_arrow())
    return frame.height


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute the named statement with $-named parameters."""
    return con.execute(sql(name), params or None)


def fetch_one(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> dict[str, Any]:
    rows = fetch_all(con, name, **params)
    return rows[0] if rows else {}


def fetch_all(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    # DuckDB 2.0 keeps an unfinished result busy on the connection: always drain it.
    cur = run(con, name, **params)
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def fetch_frame(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pl.DataFrame:
    """The named query's result as a polars frame (through Arrow, no row-by-row copy)."""
    import polars as pl

    return pl.from_arrow(con.sql(sql(name), params=params or None).to_arrow_table())  # type: ignore[return-value]
