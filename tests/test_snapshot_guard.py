from datetime import UTC, datetime

from engine.snapshot import node_snapshot_row, snapshot_problems
from models.cln import GetInfo, ListFunds, PeerChannel
from models.snapshot import NodeState

PEER = "03" + "b" * 64


def state(to_us_msat: int | None, total_msat: int | None) -> NodeState:
    return NodeState(
        name="nexus-02",
        is_fleet=True,
        taken_at=datetime(2026, 2, 9, tzinfo=UTC),
        info=GetInfo(id="02" + "a" * 64),
        channels=[
            PeerChannel(
                peer_id=PEER,
                peer_connected=True,
                state="CHANNELD_NORMAL",
                short_channel_id="1x2x3",
                to_us_msat=to_us_msat,
                total_msat=total_msat,
            )
        ],
        funds=ListFunds.model_validate(
            {
                "outputs": [],
                "channels": [
                    {
                        "peer_id": PEER,
                        "our_amount_msat": 3_000_000_000,
                        "amount_msat": 4_000_000_000,
                        "state": "CHANNELD_NORMAL",
                        "funding_txid": "00" * 32,
                        "funding_output": 0,
                    }
                ],
            }
        ),
    )


def test_audit_zero_balance_snapshot_is_rejected() -> None:
    problems = snapshot_problems(state(to_us_msat=0, total_msat=0))
    assert problems and "zero capacity" in problems[0]


def test_zero_local_balance_with_funded_channels_is_rejected() -> None:
    problems = snapshot_problems(state(to_us_msat=0, total_msat=4_000_000_000))
    assert problems and "zero local balance" in problems[0]


def test_real_snapshot_passes_and_sums_balances() -> None:
    good = state(to_us_msat=3_000_000_000, total_msat=4_000_000_000)
    assert snapshot_problems(good) == []
    row = node_snapshot_row(good).row(0, named=True)
    assert (row["capacity_msat"], row["local_msat"], row["remote_msat"]) == (
        4_000_000_000,
        3_000_000_000,
        1_000_000_000,
    )


def test_node_without_channels_is_not_a_zero_snapshot() -> None:
    empty = state(0, 0).model_copy(update={"channels": [], "funds": ListFunds()})
    assert snapshot_problems(empty) == []
