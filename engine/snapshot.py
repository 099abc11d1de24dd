"""Pure checks and row shaping for node snapshots.

The audit's snapshots recorded local=0, remote=0, capacity=0 for a whole day while the node had
16 funded channels. `snapshot_problems` is the guard that makes such a row impossible to store.
"""

from __future__ import annotations

import polars as pl

from models.snapshot import NodeState

NORMAL = "CHANNELD_NORMAL"


def snapshot_problems(state: NodeState) -> list[str]:
    """Reasons to reject this snapshot; empty when it is safe to store."""
    problems: list[str] = []
    funded = [c for c in state.funds.channels if c.state == NORMAL and c.amount_msat > 0]
    normal = [c for c in state.channels if c.state == NORMAL]
    if not funded:
        return problems
    capacity_msat = sum(c.total_msat or 0 for c in normal)
    local_msat = sum(c.to_us_msat or 0 for c in normal)
    funded_local_msat = sum(c.our_amount_msat for c in funded)
    if not normal:
        problems.append(
            f"listpeerchannels shows no normal channel while listfunds shows {len(funded)} funded"
        )
    elif capacity_msat == 0:
        problems.append(
            f"listpeerchannels claims zero capacity over {len(normal)} normal channels while "
            f"listfunds shows {len(funded)} funded channels"
        )
    elif local_msat == 0 and funded_local_msat > 0:
        problems.append(
            f"listpeerchannels claims zero local balance while listfunds shows "
            f"{funded_local_msat // 1000} sat of ours in channels"
        )
    missing = [c.short_channel_id or c.peer_id[:16] for c in normal if c.total_msat in (None, 0)]
    if missing and not problems:
        problems.append(f"normal channels without capacity: {', '.join(missing[:5])}")
    return problems


def node_row(state: NodeState) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "node_id": state.info.id,
                "name": state.name,
                "alias": state.info.alias,
                "is_fleet": state.is_fleet,
                "version": state.info.version,
                "network": state.info.network,
                "blockheight": state.info.blockheight,
                "first_seen_at": state.taken_at,
                "last_seen_at": state.taken_at,
            }
        ]
    )


def channel_rows(state: NodeState, fleet_ids: set[str]) -> pl.DataFrame:
    """One row per channel with a short_channel_id (pending opens have none yet)."""
    rows = [
        {
            "node_id": state.info.id,
            "taken_at": state.taken_at,
            "scid": c.short_channel_id,
            "peer_id": c.peer_id,
            "state": c.state,
            "peer_connected": c.peer_connected,
            "is_fleet": c.peer_id in fleet_ids,
            "capacity_msat": c.total_msat,
            "local_msat": c.to_us_msat,
            "spendable_msat": c.spendable_msat,
            "receivable_msat": c.receivable_msat,
            "fee_base_msat": c.fee_base_msat,
            "fee_ppm": c.fee_proportional_millionths,
            "htlc_max_msat": c.maximum_htlc_out_msat,
            "in_payments_fulfilled": c.in_payments_fulfilled,
            "in_fulfilled_msat": c.in_fulfilled_msat,
            "out_payments_fulfilled": c.out_payments_fulfilled,
            "out_fulfilled_msat": c.out_fulfilled_msat,
        }
        for c in state.channels
        if c.short_channel_id and c.total_msat and c.to_us_msat is not None
    ]
    return pl.DataFrame(rows, schema=CHANNEL_SCHEMA)


def node_snapshot_row(state: NodeState) -> pl.DataFrame:
    normal = [c for c in state.channels if c.state == NORMAL and c.total_msat]
    capacity_msat = sum(c.total_msat or 0 for c in normal)
    local_msat = sum(c.to_us_msat or 0 for c in normal)
    return pl.DataFrame(
        [
            {
                "node_id": state.info.id,
                "taken_at": state.taken_at,
                "num_channels": len(normal),
                "capacity_msat": capacity_msat,
                "local_msat": local_msat,
                "remote_msat": capacity_msat - local_msat,
                "onchain_msat": state.funds.onchain_confirmed_msat,
                "fees_collected_msat": state.info.fees_collected_msat,
                "blockheight": state.info.blockheight,
            }
        ]
    )


CHANNEL_SCHEMA = {
    "node_id": pl.String,
    "taken_at": pl.Datetime("us", "UTC"),
    "scid": pl.String,
    "peer_id": pl.String,
    "state": pl.String,
    "peer_connected": pl.Boolean,
    "is_fleet": pl.Boolean,
    "capacity_msat": pl.Int64,
    "local_msat": pl.Int64,
    "spendable_msat": pl.Int64,
    "receivable_msat": pl.Int64,
    "fee_base_msat": pl.Int64,
    "fee_ppm": pl.Int64,
    "htlc_max_msat": pl.Int64,
    "in_payments_fulfilled": pl.Int64,
    "in_fulfilled_msat": pl.Int64,
    "out_payments_fulfilled": pl.Int64,
    "out_fulfilled_msat": pl.Int64,
}
