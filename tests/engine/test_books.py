"""The books' pure parts: bookkeeper rows and their keys, outcome rows, the books detectors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from engine.books.outcomes import close_outcome, external_outcome, open_outcome
from engine.books.rows import income_rows, pct
from engine.report.books import detect_books_mismatch, detect_external_changes
from models.cln import IncomeEvent
from models.report import Severity

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NODE = "02" + "a" * 64
PEER = "03" + "b" * 64


def event(**kw: object) -> IncomeEvent:
    base = {
        "account": "c" * 64,
        "tag": "routed",
        "credit_msat": 101,
        "debit_msat": 0,
        "timestamp": 1_772_000_000,
    }
    return IncomeEvent.model_validate({**base, **kw})


def test_identical_events_stay_two_rows_and_a_reread_gives_the_same_keys() -> None:
    # two forwards of the same fee on the same channel in the same second (no payment_id)
    events = [
        event(),
        event(),
        event(tag="onchain_fee", credit_msat=0, debit_msat=5, txid="f" * 64),
    ]
    first = income_rows(events, NODE, NOW)
    again = income_rows(events, NODE, NOW + timedelta(hours=8))
    assert first["income_key"].n_unique() == 3
    assert first["income_key"].to_list() == again["income_key"].to_list()


def test_cln_percentages_parse() -> None:
    assert pct("1.2345%") == 1.2345 and pct(None) is None and pct("n/a") is None


ACCOUNTS = pl.DataFrame(
    {
        "account": ["old", "new"],
        "scid": ["1x1x0", "9x9x0"],
        "peer_id": [PEER, PEER],
        "first_seen_at": [NOW - timedelta(days=90), NOW - timedelta(days=29)],
    }
)


def ledger(rows: list[tuple[str, date, int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "account": a,
                "day": d,
                "routed_msat": r,
                "rebalance_fee_msat": rb,
                "onchain_fee_msat": oc,
                "net_msat": r - rb - oc,
            }
            for a, d, r, rb, oc in rows
        ]
    )


def test_an_open_is_measured_on_the_new_channel_against_its_funding_fee() -> None:
    opened = NOW - timedelta(days=30)
    book = ledger(
        [
            ("new", opened.date(), 0, 0, 1_960_000),  # the funding fee, on the channel
            ("new", opened.date() + timedelta(days=3), 500_000, 20_000, 0),
            ("new", opened.date() + timedelta(days=40), 900_000, 0, 0),  # past the horizon
            ("old", opened.date() + timedelta(days=3), 7_000_000, 0, 0),  # another channel
        ]
    )
    due = {
        "action_id": "d1",
        "node_id": NODE,
        "acted_at": opened,
        "peer_id": PEER,
        "horizon_days": 30,
        "predicted_benefit_msat": 9_000_000,
    }
    row = open_outcome(due, ACCOUNTS, book, NOW, decision_horizon_days=90)
    assert row["status"] == "measured" and row["scid"] == "9x9x0"
    assert row["revenue_msat"] == 500_000 and row["cost_msat"] == 1_980_000
    assert row["actual_benefit_msat"] == -1_480_000
    assert row["predicted_benefit_msat"] == 3_000_000  # 30 of the estimate's 90 days
    unseen = open_outcome({**due, "peer_id": "03" + "c" * 64}, ACCOUNTS, book, NOW, 90)
    assert unseen["status"] == "insufficient_data" and "no channel" in unseen["detail"]


def test_a_close_weighs_lost_revenue_and_avoided_fees_and_reports_freed_capital() -> None:
    closed = NOW - timedelta(days=7)
    day = closed.date()
    book = ledger(
        [
            ("old", day - timedelta(days=3), 40_000, 300_000, 0),
            ("old", day - timedelta(days=10), 99_000, 0, 0),  # before the 7-day window
            ("old", day, 0, 0, 1_500_000),  # the close fee
        ]
    )
    due = {
        "action_id": "d2",
        "node_id": NODE,
        "acted_at": closed,
        "scid": "1x1x0",
        "horizon_days": 7,
        "predicted_benefit_msat": None,
        "freed_capital_msat": 2_000_000_000,
    }
    row = close_outcome(due, ACCOUNTS, book, NOW, decision_horizon_days=90)
    assert row["lost_revenue_msat"] == 40_000 and row["cost_msat"] == 1_500_000
    assert row["actual_benefit_msat"] == 300_000 - 40_000 - 1_500_000
    assert row["freed_capital_msat"] == 2_000_000_000


def test_an_external_change_compares_the_week_after_with_the_week_before() -> None:
    at = NOW - timedelta(days=7)
    book = ledger(
        [
            ("old", at.date() - timedelta(days=2), 10_000, 0, 0),
            ("old", at.date() + timedelta(days=2), 25_000, 0, 0),
        ]
    )
    due = {
        "action_id": "e1",
        "node_id": NODE,
        "acted_at": at,
        "scid": "1x1x0",
        "field": "fee_ppm",
        "old_value": 100,
        "new_value": 777,
        "horizon_days": 7,
    }
    row = external_outcome(due, ACCOUNTS, book, NOW)
    assert row["actual_benefit_msat"] == 15_000 and "100 -> 777" in row["detail"]


def recon(**kw: object) -> dict[str, object]:
    base = {
        "node_name": "nexus-02",
        "day": date(2026, 2, 1),
        "forwards_fee_msat": 59_338,
        "bkpr_routed_msat": 59_338,
        "routed_diff_msat": 0,
        "sling_fee_msat": 6_000,
        "bkpr_rebalance_fee_msat": 6_720,
        "rebalance_diff_msat": 720,
        "rebalance_tolerance_msat": 2_000,
        "bkpr_unexplained_events": 0,
    }
    return {**base, **kw}


def test_books_mismatch_passes_within_slings_rounding_and_fires_with_both_numbers() -> None:
    assert detect_books_mismatch(pl.DataFrame([recon()])).ok
    bad = detect_books_mismatch(
        pl.DataFrame(
            [recon(), recon(day=date(2026, 2, 2), forwards_fee_msat=58_000, routed_diff_msat=1_338)]
        )
    )
    assert not bad.ok and bad.severity is Severity.WARNING
    assert "forwards 58000 msat vs bookkeeper routed 59338 msat" in bad.summary
    over = detect_books_mismatch(
        pl.DataFrame([recon(bkpr_rebalance_fee_msat=9_000, rebalance_diff_msat=3_000)])
    )
    assert not over.ok and "sling 6000 msat vs bookkeeper rebalance fees 9000 msat" in over.summary
    unexplained = detect_books_mismatch(pl.DataFrame([recon(bkpr_unexplained_events=1)]))
    assert not unexplained.ok
    assert not detect_books_mismatch(pl.DataFrame()).measurable


def test_external_changes_are_listed() -> None:
    changes = pl.DataFrame(
        [
            {
                "node_name": "nexus-02",
                "scid": "1x1x0",
                "field": "fee_ppm",
                "old_value": 100,
                "new_value": 777,
                "detected_at": NOW,
            }
        ]
    )
    finding = detect_external_changes(changes, NOW)
    assert not finding.ok and "1x1x0 fee_ppm 100 -> 777" in finding.summary
    assert detect_external_changes(changes.clear(), NOW).ok
