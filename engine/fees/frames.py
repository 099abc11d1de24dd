"""Declared schemas for the frames the fee core reads, and the one step that conforms them.

The flow reads these from the warehouse (forwards, fee_changes, peer_fee_policies); the bench and
the tests build them by hand. Conforming once at the door means the pure code below never
guesses a dtype, a time zone or a missing column.
"""

from __future__ import annotations

import polars as pl

UTC_TIMESTAMP = pl.Datetime("us", "UTC")

# Forwards: warehouse `forwards` columns. in_channel/in_msat are optional (drain then counts
# outbound only); status 'settled' is the only one that earns.
FORWARD_SCHEMA: dict[str, pl.DataType] = {
    "in_channel": pl.String(),
    "out_channel": pl.String(),
    "in_msat": pl.Int64(),
    "out_msat": pl.Int64(),
    "fee_msat": pl.Int64(),
    "status": pl.String(),
    "resolved_at": UTC_TIMESTAMP,
}
FORWARD_REQUIRED = ("out_channel", "out_msat", "fee_msat", "status", "resolved_at")

# Fee change log: one row per applied change. reason/change_id/predicted_benefit_msat are
# optional; with them the controller knows it is recovering from a drain defence and the outcome
# estimator can report prediction errors.
FEE_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "scid": pl.String(),
    "changed_at": UTC_TIMESTAMP,
    "new_ppm": pl.Int64(),
    "reason": pl.String(),
    "change_id": pl.String(),
    "predicted_benefit_msat": pl.Int64(),
}
FEE_CHANGE_REQUIRED = ("scid", "changed_at", "new_ppm")

# Competitor gossip: warehouse `peer_fee_policies` columns the market view needs.
PEER_POLICY_SCHEMA: dict[str, pl.DataType] = {
    "scid": pl.String(),
    "direction": pl.Int64(),
    "last_update": pl.Int64(),
    "source_id": pl.String(),
    "peer_id": pl.String(),
    "is_ours": pl.Boolean(),
    "base_fee_msat": pl.Int64(),
    "fee_ppm": pl.Int64(),
    "active": pl.Boolean(),
}
PEER_POLICY_REQUIRED = tuple(PEER_POLICY_SCHEMA)


class FrameContractError(ValueError):
    """A frame handed to the fee core does not match its declared schema."""


def conform(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], required: tuple[str, ...], what: str
) -> pl.DataFrame:
    """Select `schema`'s columns in its dtypes; absent optional columns become nulls.

    Naive timestamps are taken as UTC (the warehouse stores UTC); aware ones are converted.
    """
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise FrameContractError(
            f"{what} frame lacks column(s) {missing}; it needs {list(required)} "
            f"(schema in engine/fees/frames.py)"
        )
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        source = frame.schema[name]
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime) and isinstance(source, pl.Datetime):
            column = (
                column.dt.replace_time_zone("UTC")
                if source.time_zone is None
                else column.dt.convert_time_zone("UTC")
            )
            exprs.append(column.dt.cast_time_unit("us").alias(name))
        elif isinstance(dtype, pl.Datetime) and source != pl.Null:
            raise FrameContractError(f"{what}.{name} must be a timestamp, got {source}")
        else:
            exprs.append(column.cast(dtype, strict=True).alias(name))
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise FrameContractError(f"{what} frame does not match its schema: {exc}") from exc
