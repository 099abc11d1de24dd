import pytest

from models.cln import PeerChannel
from models.forwards import MalformedForwards, forwards_frame
from models.msat import parse_msat


@pytest.mark.parametrize(
    ("raw", "msat"),
    [(1234, 1234), ("1234msat", 1234), ("5sat", 5000), ("0.001btc", 100_000_000), ("77", 77)],
)
def test_old_and_new_msat_forms_parse_to_the_same_int(raw: object, msat: int) -> None:
    assert parse_msat(raw) == msat


@pytest.mark.parametrize("raw", ["12.5msat", "-3", "abc", True, -1, 1.5])
def test_bad_msat_values_are_rejected_with_the_value_named(raw: object) -> None:
    with pytest.raises(ValueError, match="msat"):
        parse_msat(raw)


def test_peer_channel_accepts_old_string_amounts() -> None:
    channel = PeerChannel.model_validate(
        {
            "peer_id": "02" + "a" * 64,
            "peer_connected": True,
            "state": "CHANNELD_NORMAL",
            "to_us_msat": "1000000msat",
            "total_msat": "2000000msat",
        }
    )
    assert (channel.to_us_msat, channel.total_msat) == (1_000_000, 2_000_000)


def test_forwards_page_with_old_strings_matches_the_integer_page() -> None:
    new = [
        {
            "created_index": 1,
            "in_channel": "1x1x1",
            "in_msat": 1001,
            "out_msat": 1000,
            "fee_msat": 1,
            "status": "settled",
            "received_time": 1.0,
            "resolved_time": 2.0,
        }
    ]
    old = [{**new[0], "in_msat": "1001msat", "out_msat": "1000msat", "fee_msat": "1msat"}]
    assert forwards_frame(old).equals(forwards_frame(new))


def test_forwards_page_missing_a_required_field_names_it() -> None:
    with pytest.raises(MalformedForwards, match="in_msat"):
        forwards_frame(
            [{"created_index": 3, "in_channel": "1x1x1", "status": "settled", "received_time": 1.0}]
        )
