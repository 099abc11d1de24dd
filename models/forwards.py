"""listforwards pages as a polars frame with a declared schema.

Forwards arrive by the hundred thousand, so they skip per-row pydantic models: a page becomes a
typed frame in one call, with the same tolerance as `models.msat` (ints or old "123msat").
"""

from __future__ import annotations

from typing import Any

import polars as pl

from models.msat import parse_msat

FORWARD_STATUSES = ("offered", "settled", "local_failed", "failed")
MSAT_COLUMNS = ("in_msat", "out_msat", "fee_msat")
REQUIRED_COLUMNS = ("created_index", "in_channel", "in_msat", "status", "received_time")

FORWARD_SCHEMA: dict[str, pl.DataType] = {
    "created_index": pl.Int64(),
    "updated_index": pl.Int64(),
    "in_channel": pl.String(),
    "out_channel": pl.String(),
    "in_htlc_id": pl.Int64(),
    "out_htlc_id": pl.Int64(),
    "in_msat": pl.Int64(),
    "out_msat": pl.Int64(),
    "fee_msat": pl.Int64(),
    "status": pl.String(),
    "failcode": pl.Int64(),
    "failreason": pl.String(),
    "received_time": pl.Float64(),
    "resolved_time": pl.Float64(),
    "style": pl.String(),
}


class MalformedForwards(ValueError):
    """A listforwards page we cannot store without losing or inventing data."""


def forwards_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Parse listforwards rows; raise MalformedForwards naming the first bad field."""
    if not rows:
        return pl.DataFrame(schema=FORWARD_SCHEMA)
    try:
        frame = pl.from_dicts(rows, schema=FORWARD_SCHEMA, strict=True)
    except (TypeError, pl.exceptions.PolarsError):
        frame = _parse_legacy(rows)
    if frame["created_index"].null_count():
        raise MalformedForwards(
            "listforwards rows have no 'created_index': this node runs a CLN older than v23.11, "
            "whose forwards cannot be read incrementally; upgrade lightningd to v23.11 or later"
        )
    frame = _fill_fee(frame)
    for column in REQUIRED_COLUMNS:
        if frame[column].null_count():
            bad = frame.filter(pl.col(column).is_null()).row(0, named=True)
            raise MalformedForwards(
                f"listforwards row created_index={bad['created_index']} has no {column!r}"
            )
    unknown = frame.filter(~pl.col("status").is_in(FORWARD_STATUSES))
    if unknown.height:
        raise MalformedForwards(
            f"listforwards status {unknown['status'][0]!r} is not one of {FORWARD_STATUSES}"
        )
    return frame


def _fill_fee(frame: pl.DataFrame) -> pl.DataFrame:
    """A resolved forward without `fee_msat` (some releases omit it) charged in - out."""
    return frame.with_columns(
        pl.when(pl.col("fee_msat").is_null() & pl.col("out_msat").is_not_null())
        .then(pl.col("in_msat") - pl.col("out_msat"))
        .otherwise(pl.col("fee_msat"))
        .alias("fee_msat")
    )


def _parse_legacy(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Slow path for pre-v23.05 nodes that render amounts as strings."""
    fixed = []
    for row in rows:
        row = dict(row)
        for column in MSAT_COLUMNS:
            value = row.get(column)
            if value is not None:
                try:
                    row[column] = parse_msat(value)
                except ValueError as exc:
                    raise MalformedForwards(
                        f"listforwards row created_index={row.get('created_index')}: "
                        f"{column}: {exc}"
                    ) from exc
        fixed.append(row)
    try:
        return pl.from_dicts(fixed, schema=FORWARD_SCHEMA, strict=True)
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise MalformedForwards(f"listforwards page does not match the schema: {exc}") from exc
