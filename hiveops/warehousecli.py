"""`hiveops warehouse info|publish`: the live file, the read copy and how fresh the copy is.

`info` never waits for a loop: it reads file sizes, the writer lock file and the copy (read-only).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hiveops.sqlcli import warehouse_paths
from models.warehouse_paths import WarehousePaths


def add_parser(sub: Any) -> None:
    wh = sub.add_parser("warehouse", help="the live warehouse file and its read copy")
    wsub = wh.add_subparsers(dest="warehouse_command")
    info = wsub.add_parser(
        "info", help="files, sizes, when the read copy was published and by whom"
    )
    info.add_argument("--config", type=Path)
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_info)
    publish = wsub.add_parser("publish", help="publish the read copy now (waits for the writers)")
    publish.add_argument("--config", type=Path)
    publish.set_defaults(handler=_publish)


def _file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"path": str(path), "exists": False}
    stat = path.stat()
    return {
        "path": str(path),
        "exists": True,
        "size_bytes": stat.st_size,
        "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
    }


def _writer_lock(live: Path) -> dict[str, Any]:
    """Whether a writer holds the lock now (a non-blocking shared probe) and who last took it."""
    lock = live.with_name(live.name + ".writer-lock")
    if not lock.exists():
        return {"held": False, "holder": None}
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held = True
    finally:
        os.close(fd)
    return {"held": held, "holder": lock.read_text().strip() or None}


def describe(paths: WarehousePaths) -> dict[str, Any]:
    live = _file(paths.live)
    wal = paths.live.with_name(paths.live.name + ".wal")
    live["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    live["writer_lock"] = _writer_lock(paths.live)
    copy = _file(paths.read_copy)
    if copy["exists"]:
        from warehouse.readcopy import copy_publish

        try:
            published = copy_publish(paths.read_copy)
        except Exception as exc:  # a read-write session on the copy holds it: say so, go on
            copy["error"] = str(exc).splitlines()[0]
        else:
            if published:
                at: datetime = published["published_at"]
                copy.update(
                    published_at=at.isoformat(),
                    age_s=round((datetime.now(UTC) - at).total_seconds(), 1),
                    loop=published["loop"],
                    run_id=published["run_id"],
                    pid=published["pid"],
                )
    copy["publish_every_s"] = paths.publish_every_s
    copy["publish_max_age_s"] = paths.publish_max_age_s
    return {"live": live, "read_copy": copy}


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _info(args: argparse.Namespace) -> int:
    info = describe(warehouse_paths(args.config))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    live, copy = info["live"], info["read_copy"]
    if live["exists"]:
        lock = live["writer_lock"]
        holder = f"held by {lock['holder']}" if lock["held"] else "free"
        print(f"live file   {live['path']}")
        print(f"            {_mb(live['size_bytes'])} + WAL {_mb(live['wal_bytes'])}, ", end="")
        print(f"modified {live['modified_at']}, writer lock {holder}")
    else:
        print(f"live file   {live['path']} (does not exist yet: run `hiveops run collect`)")
    print(f"read copy   {copy['path']}")
    if not copy["exists"]:
        print("            not published yet (the next writing loop run publishes it)")
    elif "error" in copy:
        print(f"            {_mb(copy['size_bytes'])}, unreadable now: {copy['error']}")
    elif "published_at" in copy:
        print(
            f"            {_mb(copy['size_bytes'])}, published {copy['published_at']} "
            f"({copy['age_s']:.0f} s ago) by {copy['loop']} run {copy['run_id']}"
        )
    every, max_age = copy["publish_every_s"], copy["publish_max_age_s"]
    floor = f", never within {every:g} s of the last" if every else ""
    print(
        f"publishing  after every writing loop run{floor}; while a publish costs over 10% of a "
        f"run, only once the copy is {max_age:g} s old"
    )
    return 0


def _publish(args: argparse.Namespace) -> int:
    from models.settings import load_settings
    from warehouse import db
    from warehouse.readcopy import CopyConfig

    settings = load_settings(args.config)
    if not settings.warehouse_path.exists():
        raise FileNotFoundError(
            f"warehouse {settings.warehouse_path} does not exist yet; run `hiveops run collect`"
        )
    done = db.publish_now(
        settings.warehouse_path,
        loop="manual",
        run_id=f"cli-{uuid.uuid4().hex[:12]}",
        config=CopyConfig(settings.read_copy_path),
        timeout_s=settings.warehouse.lock_timeout_s,
    )
    if done is None:  # only a non-forced publish skips
        return 1
    print(f"published {done.path} ({_mb(done.size_bytes)}) in {done.total_s:.2f} s")
    return 0
