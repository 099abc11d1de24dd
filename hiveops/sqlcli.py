"""`hiveops sql`: ad-hoc, read-only SQL for operators, on the read copy unless `--live`.

This path imports duckdb and nothing heavy (no prefect, polars or pydantic): `select 1` has a
0.3 s budget, and the copy never waits for a loop. `--live` reads the live file and waits its
turn behind the writers (bounded by warehouse.lock_timeout_s).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from models.warehouse_paths import NeedsFullSettings, WarehousePaths, quick_paths
from warehouse import readonly

TABLE_MAX_ROWS = 200


def add_parser(sub: Any) -> None:
    sql = sub.add_parser("sql", help="read-only SQL on the read copy (--live: the live file)")
    sql.add_argument("query")
    sql.add_argument("--config", type=Path)
    sql.add_argument(
        "--live", action="store_true", help="read the live file, waiting behind the loops"
    )
    fmt = sql.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    sql.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    fmt = "csv" if args.csv else "json" if args.json else "table"
    return run_sql(args.query, args.config, fmt, live=args.live)


def warehouse_paths(config: Path | None) -> WarehousePaths:
    """The quick resolution; the full settings loader explains anything it cannot read."""
    try:
        return quick_paths(config)
    except NeedsFullSettings:
        from models.settings import load_settings

        settings = load_settings(config)
        return WarehousePaths(
            settings.warehouse_path,
            settings.read_copy_path,
            settings.warehouse.lock_timeout_s,
            settings.warehouse.publish_every_s,
            settings.warehouse.publish_max_age_s,
        )


@contextlib.contextmanager
def _connection(paths: WarehousePaths, live: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    if live:
        with readonly.connect(paths.live, timeout_s=paths.lock_timeout_s) as con:
            yield con
        return
    from warehouse.readcopy import open_copy

    if not paths.read_copy.exists() and not paths.live.exists():
        raise FileNotFoundError(
            f"warehouse {paths.live} does not exist yet; run `hiveops run collect` first"
        )
    con = open_copy(paths.read_copy, config=readonly.HARDENED)
    try:
        yield con
    finally:
        con.close()


def run_sql(query: str, config: Path | None, fmt: str, *, live: bool = False) -> int:
    paths = warehouse_paths(config)
    try:
        readonly.check(query)
    except readonly.ReadOnlyRefused as exc:
        print(f"hiveops sql: {exc}", file=sys.stderr)
        return 1
    with _connection(paths, live) as con:
        try:
            relation = con.sql(query)
            if relation is None:  # a statement with no result (SET, PRAGMA ...)
                return 0
            if fmt == "table":
                relation.show(max_rows=TABLE_MAX_ROWS, max_width=10_000)
                return 0
            columns = relation.columns
            rows = relation.fetchall()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            if "read-only" in message.lower():
                message += " (hiveops sql is read-only; the loops own the writes)"
            elif isinstance(exc, duckdb.PermissionException):
                message += " (hiveops sql reads the warehouse only, never other files)"
            print(f"hiveops sql: {message}", file=sys.stderr)
            return 1
    if fmt == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows([_plain(v, csv=True) for v in row] for row in rows)
    else:
        records = [dict(zip(columns, (_plain(v) for v in row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records) + "\n")
    return 0


def _plain(value: Any, *, csv: bool = False) -> Any:
    """A value JSON and CSV can carry: numbers, text, ISO times; NULL is empty in CSV."""
    if value is None:
        return "" if csv else None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return json.dumps([_plain(v) for v in value]) if csv else [_plain(v) for v in value]
    if isinstance(value, dict):
        plain = {str(k): _plain(v) for k, v in value.items()}
        return json.dumps(plain) if csv else plain
    return str(value)
