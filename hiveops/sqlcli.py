"""`hiveops sql`: ad-hoc, read-only SQL for operators."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import polars as pl

from models.settings import load_settings
from warehouse import readonly


def run_sql(query: str, config: Path | None, fmt: str) -> int:
    settings = load_settings(config)
    try:
        readonly.check(query)
    except readonly.ReadOnlyRefused as exc:
        print(f"hiveops sql: {exc}", file=sys.stderr)
        return 1
    path, timeout_s = settings.warehouse_path, settings.warehouse.lock_timeout_s
    with readonly.connect(path, timeout_s=timeout_s) as con:
        try:
            relation = con.sql(query)
            frame = relation.pl() if relation is not None else pl.DataFrame()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            if "read-only" in message.lower():
                message += " (hiveops sql is read-only; the loops own the writes)"
            elif isinstance(exc, duckdb.PermissionException):
                message += " (hiveops sql reads the warehouse only, never other files)"
            print(f"hiveops sql: {message}", file=sys.stderr)
            return 1
    if fmt == "csv":
        frame.write_csv(sys.stdout)
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(
            tbl_rows=200, tbl_cols=-1, fmt_str_lengths=66, tbl_hide_dataframe_shape=True
        ):
            print(frame)
    return 0
