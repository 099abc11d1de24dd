"""The simulated bookkeeper plugin: account events as CLN records them, income derived from them.

CLN's bookkeeper (plugins/bkpr) keeps coin movements per account (`wallet`, each channel's
channel_id, `external`) and derives the income statement from them. The rules reproduced here:

- a forward is two channel events: `routed` credit of in_msat on the incoming channel and debit
  of out_msat on the outgoing one, both with `fees_msat` = the fee; listincome reports the fee
  once, as a credit on the outgoing (debited) channel;
- a payment we send is an `invoice` debit (amount + fees) on the first hop's channel; listincome
  splits it into `invoice` (the amount) and `invoice_fee` (the fees). When both legs are ours
  (a circular rebalance) the events carry `is_rebalance`, listincome drops both invoice legs and
  reports only `rebalance_fee` on the debited channel;
- on-chain fees are `onchain_fee` events per (account, txid), credit = fee paid; listincome
  consolidates them per (account, txid) and swaps the sides (a fee paid is a debit);
- `deposit` to the wallet from outside is income-statement credit; a deposit created by
  spending one of our own outputs (a close's payout) is not;
- `lease_fee`, `pushed`, `journal_entry` pass through as recorded; `penalty_adj` only as credit.

Time windows follow CLN: `start_time < timestamp <= end_time`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

CURRENCY = "bc"
PASS_THROUGH_TAGS = frozenset({"lease_fee", "pushed", "journal_entry"})


@dataclass(slots=True)
class AccountEvent:
    """One bkpr-listaccountevents entry (type channel | chain | onchain_fee)."""

    type: str
    account: str
    tag: str
    credit_msat: int
    debit_msat: int
    timestamp: int
    fees_msat: int = 0
    payment_id: str | None = None
    part_id: int | None = None
    is_rebalance: bool = False
    outpoint: str | None = None
    txid: str | None = None
    blockheight: int | None = None
    origin: str | None = None
    description: str | None = None
    # a deposit made by spending one of our own outputs (not income)
    internal: bool = False


def payment_id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class Bookkeeper:
    """One fleet node's bookkeeper database."""

    events: list[AccountEvent] = field(default_factory=list)

    # -- recording ----------------------------------------------------------------------
    def routed(
        self,
        in_account: str,
        out_account: str,
        in_msat: int,
        out_msat: int,
        timestamp: int,
        pay_id: str,
    ) -> None:
        fee = in_msat - out_msat
        for account, credit, debit in ((in_account, in_msat, 0), (out_account, 0, out_msat)):
            self.events.append(
                AccountEvent("channel", account, "routed", credit, debit, timestamp, fee, pay_id, 0)
            )

    def rebalance(
        self,
        out_account: str,
        in_account: str,
        amount_msat: int,
        fee_msat: int,
        timestamp: int,
        pay_id: str,
    ) -> None:
        """A circular payment: leaves on `out_account` with its fees, returns on `in_account`."""
        self.events.append(
            AccountEvent(
                "channel",
                out_account,
                "invoice",
                0,
                amount_msat + fee_msat,
                timestamp,
                fee_msat,
                pay_id,
                0,
                is_rebalance=True,
            )
        )
        self.events.append(
            AccountEvent(
                "channel", in_account, "invoice", amount_msat, 0, timestamp, 0, pay_id, 0, True
            )
        )

    def deposit(
        self, amount_msat: int, outpoint: str, blockheight: int, timestamp: int, internal: bool
    ) -> None:
        self.events.append(
            AccountEvent(
                "chain",
                "wallet",
                "deposit",
                amount_msat,
                0,
                timestamp,
                outpoint=outpoint,
                blockheight=blockheight,
                internal=internal,
            )
        )

    def channel_open(
        self,
        account: str,
        spent_outpoints: list[tuple[str, int]],
        funding_msat: int,
        fee_msat: int,
        change_msat: int,
        txid: str,
        blockheight: int,
        timestamp: int,
    ) -> None:
        """Our funding tx: wallet inputs withdrawn, the channel opened, change back, the fee
        carried by the channel account (as CLN attributes an opener's funding fee)."""
        for outpoint, amount in spent_outpoints:
            self.events.append(
                AccountEvent(
                    "chain",
                    "wallet",
                    "withdrawal",
                    0,
                    amount,
                    timestamp,
                    outpoint=outpoint,
                    txid=txid,
                    blockheight=blockheight,
                )
            )
        self.events.append(
            AccountEvent(
                "chain",
                account,
                "channel_open",
                funding_msat,
                0,
                timestamp,
                outpoint=f"{txid}:0",
                blockheight=blockheight,
            )
        )
        if change_msat:
            self.deposit(change_msat, f"{txid}:1", blockheight, timestamp, internal=True)
        self.onchain_fee(account, fee_msat, txid, timestamp)

    def channel_close(
        self,
        account: str,
        funding_outpoint: str,
        our_msat: int,
        fee_msat: int,
        payout_msat: int,
        txid: str,
        blockheight: int,
        timestamp: int,
    ) -> None:
        self.events.append(
            AccountEvent(
                "chain",
                account,
                "channel_close",
                0,
                our_msat,
                timestamp,
                outpoint=funding_outpoint,
                txid=txid,
                blockheight=blockheight,
            )
        )
        if fee_msat:
            self.onchain_fee(account, fee_msat, txid, timestamp)
        if payout_msat:
            self.deposit(payout_msat, f"{txid}:0", blockheight, timestamp, internal=True)

    def onchain_fee(self, account: str, fee_msat: int, txid: str, timestamp: int) -> None:
        self.events.append(
            AccountEvent("onchain_fee", account, "onchain_fee", fee_msat, 0, timestamp, txid=txid)
        )

    def record(self, event: AccountEvent) -> None:
        """Any other entry (lease_fee, pushed, journal_entry, penalty_adj, ...)."""
        self.events.append(event)

    # -- reading ------------------------------------------------------------------------
    def account_events(
        self, account: str | None = None, pay_id: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for e in self.events:
            if account is not None and e.account != account:
                continue
            if pay_id is not None and e.payment_id != pay_id:
                continue
            out.append(_account_json(e))
        return out

    def income(
        self, start_time: int = 0, end_time: int | None = None, consolidate_fees: bool = True
    ) -> list[dict[str, Any]]:
        window = [
            e
            for e in self.events
            if e.timestamp > start_time and (end_time is None or e.timestamp <= end_time)
        ]
        rows: list[tuple[int, int, dict[str, Any]]] = []
        for order, e in enumerate(window):
            if e.type == "onchain_fee":
                continue
            for row in _income_of(e):
                rows.append((e.timestamp, order, row))
        fees = _onchain_fees([e for e in window if e.type == "onchain_fee"], consolidate_fees)
        rows += [(row["timestamp"], len(window) + i, row) for i, row in enumerate(fees)]
        return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]


def _account_json(e: AccountEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account": e.account,
        "type": e.type,
        "tag": e.tag,
        "credit_msat": e.credit_msat,
        "debit_msat": e.debit_msat,
        "currency": CURRENCY,
        "timestamp": e.timestamp,
    }
    if e.type == "chain":
        out["outpoint"] = e.outpoint
        out["blockheight"] = e.blockheight
        for key in ("txid", "origin", "payment_id", "description"):
            if getattr(e, key) is not None:
                out[key] = getattr(e, key)
    elif e.type == "onchain_fee":
        out["txid"] = e.txid
    else:
        if e.fees_msat:
            out["fees_msat"] = e.fees_msat
        if e.payment_id is not None:
            out["payment_id"] = e.payment_id
            out["part_id"] = e.part_id or 0
        if e.description is not None:
            out["description"] = e.description
        out["is_rebalance"] = e.is_rebalance
    return out


def _row(e: AccountEvent, tag: str, credit: int, debit: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "account": e.account,
        "tag": tag,
        "credit_msat": credit,
        "debit_msat": debit,
        "currency": CURRENCY,
        "timestamp": e.timestamp,
    }
    if e.description is not None:
        row["description"] = e.description
    if e.type == "chain":
        row["outpoint"] = e.outpoint
        if e.txid is not None:
            row["txid"] = e.txid
    if e.payment_id is not None:
        row["payment_id"] = e.payment_id
    return row


def _income_of(e: AccountEvent) -> list[dict[str, Any]]:
    if e.type == "chain":
        if e.tag == "deposit" and e.account == "wallet" and not e.internal:
            return [_row(e, "deposit", e.credit_msat, e.debit_msat)]
        return []  # withdrawals, opens and closes move our own money between accounts
    if e.credit_msat == 0 and e.debit_msat == 0:
        return []
    if e.tag == "routed":
        return [_row(e, "routed", e.fees_msat, 0)] if e.debit_msat else []
    if e.tag == "invoice":
        if e.is_rebalance:
            # both legs are dropped; the fee is reported when there is one
            return [_row(e, "rebalance_fee", 0, e.fees_msat)] if e.fees_msat else []
        if e.debit_msat:
            rows = [_row(e, "invoice", e.credit_msat, e.debit_msat - e.fees_msat)]
            if e.fees_msat:
                rows.append(_row(e, "invoice_fee", 0, e.fees_msat))
            return rows
        return [_row(e, "invoice", e.credit_msat, 0)]
    if e.tag == "penalty_adj":
        return [_row(e, e.tag, e.credit_msat, e.debit_msat)] if e.credit_msat else []
    return [_row(e, e.tag, e.credit_msat, e.debit_msat)]


def _onchain_fees(events: list[AccountEvent], consolidate: bool) -> list[dict[str, Any]]:
    def row(account: str, txid: str, paid: int, timestamp: int) -> dict[str, Any]:
        credit, debit = (0, paid) if paid >= 0 else (-paid, 0)
        return {
            "account": account,
            "tag": "onchain_fee",
            "credit_msat": credit,
            "debit_msat": debit,
            "currency": CURRENCY,
            "timestamp": timestamp,
            "txid": txid,
        }

    if not consolidate:
        return [
            row(e.account, e.txid or "", e.credit_msat - e.debit_msat, e.timestamp) for e in events
        ]
    sums: dict[tuple[str, str], list[int]] = {}
    for e in events:
        key = (e.account, e.txid or "")
        total = sums.setdefault(key, [0, 0])
        total[0] += e.credit_msat - e.debit_msat
        total[1] = max(total[1], e.timestamp)
    return [row(a, t, paid, ts) for (a, t), (paid, ts) in sums.items() if paid != 0]
