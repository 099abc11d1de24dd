"""bkpr-channelsapy for the simulated bookkeeper, with CLN's arithmetic.

Per channel account with channel events in the window: `routed` and `invoice` credits and
debits are routed_in / routed_out; a `routed` event's fees count as fees_in when it credited the
channel and fees_out when it debited it; `pushed` and `lease_fee` go to their own fields. The
starting balance is the channel_open credit, less pushes and lease fees out, plus those in. APYs
are earned / capital × 52,364 blocks a year / blocks since the open (to the close or now, + 1),
as percentages with four decimals; a `net` row sums every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lnsim.bookkeeper import AccountEvent, Bookkeeper

BLOCK_YEAR = 52_364


@dataclass
class _Apy:
    account: str
    routed_in: int = 0
    routed_out: int = 0
    fees_in: int = 0
    fees_out: int = 0
    push_in: int = 0
    push_out: int = 0
    lease_in: int = 0
    lease_out: int = 0
    our_start: int = 0
    total_start: int = 0
    start_block: int = 0
    end_block: int = 0


def channels_apy(
    books: Bookkeeper,
    start_time: int,
    end_time: int | None,
    blockheight: int,
    capacity_msat: dict[str, int],
) -> list[dict[str, Any]]:
    opens = {e.account: e for e in books.events if e.type == "chain" and e.tag == "channel_open"}
    closes = {e.account: e for e in books.events if e.type == "chain" and e.tag == "channel_close"}
    found: dict[str, _Apy] = {}
    for e in books.events:
        if e.type != "channel" or e.account not in opens:
            continue
        if e.timestamp <= start_time or (end_time is not None and e.timestamp > end_time):
            continue
        apy = found.setdefault(e.account, _Apy(e.account))
        _accumulate(apy, e)
    rows = []
    net = _Apy("net", start_block=2**32)
    for account in sorted(found):
        apy = found[account]
        opened = opens[account]
        apy.start_block = opened.blockheight or 0
        closed = closes.get(account)
        apy.end_block = closed.blockheight or blockheight if closed else blockheight
        apy.total_start = capacity_msat.get(account, opened.credit_msat)
        apy.our_start = (
            opened.credit_msat - apy.push_out - apy.lease_out + apy.push_in + apy.lease_in
        )
        rows.append(_json(apy))
        for name in ("routed_in", "routed_out", "fees_in", "fees_out", "push_in", "push_out"):
            setattr(net, name, getattr(net, name) + getattr(apy, name))
        net.lease_in += apy.lease_in
        net.lease_out += apy.lease_out
        net.our_start += apy.our_start
        net.total_start += apy.total_start
        net.start_block = min(net.start_block, apy.start_block)
        net.end_block = max(net.end_block, apy.end_block)
    if net.total_start:
        rows.append(_json(net))
    return rows


def _accumulate(apy: _Apy, e: AccountEvent) -> None:
    if e.tag in ("routed", "invoice"):
        apy.routed_in += e.credit_msat
        apy.routed_out += e.debit_msat
        if e.tag == "routed":
            if e.credit_msat:
                apy.fees_in += e.fees_msat
            else:
                apy.fees_out += e.fees_msat
    elif e.tag == "pushed":
        apy.push_in += e.credit_msat
        apy.push_out += e.debit_msat
    elif e.tag == "lease_fee":
        apy.lease_in += e.credit_msat
        apy.lease_out += e.debit_msat


def _pct(value: float) -> str:
    return f"{value * 100:.4f}%"


def _json(a: _Apy) -> dict[str, Any]:
    blocks = max(1, a.end_block - a.start_block + 1)
    theirs = a.total_start - a.our_start

    def apy(earned: int, capital: int) -> str:
        return _pct(earned / capital * BLOCK_YEAR / blocks)

    out: dict[str, Any] = {
        "account": a.account,
        "routed_out_msat": a.routed_out,
        "routed_in_msat": a.routed_in,
        "lease_fee_paid_msat": a.lease_out,
        "lease_fee_earned_msat": a.lease_in,
        "pushed_out_msat": a.push_out,
        "pushed_in_msat": a.push_in,
        "our_start_balance_msat": a.our_start,
        "channel_start_balance_msat": a.total_start,
        "fees_out_msat": a.fees_out,
        "fees_in_msat": a.fees_in,
        "utilization_out": _pct(a.routed_out / a.total_start),
    }
    if a.our_start:
        out["utilization_out_initial"] = _pct(a.routed_out / a.our_start)
    out["utilization_in"] = _pct(a.routed_in / a.total_start)
    if theirs:
        out["utilization_in_initial"] = _pct(a.routed_in / theirs)
    out["apy_out"] = apy(a.fees_out, a.total_start)
    if a.our_start:
        out["apy_out_initial"] = apy(a.fees_out, a.our_start)
    out["apy_in"] = apy(a.fees_in, a.total_start)
    if theirs:
        out["apy_in_initial"] = apy(a.fees_in, theirs)
    total = a.fees_in + a.fees_out
    out["apy_total"] = apy(total, a.total_start)
    if a.our_start:
        out["apy_total_initial"] = apy(total, a.our_start)
    return out
