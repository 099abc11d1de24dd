"""sling-stats output, in sling's shapes (thousands-separated strings, local-time strings)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lnsim.slingsim import Record, Sling

WINDOW_S = 30 * 86_400


def _window(sling: Sling, scid: str) -> list[Record]:
    since = sling.market.net.now - WINDOW_S
    return [r for r in sling.records.get(scid, []) if r.at >= since]


def summary(sling: Sling, scid: str) -> dict[str, Any]:
    net = sling.market.net
    channel = net.channels.get(scid)
    peer = channel.other(sling.pubkey) if channel else ""
    window = _window(sling, scid)
    ok = [r for r in window if r.ok]
    job = sling.jobs.get(scid)
    fee_ppm = (
        (sum(r.fee_msat for r in ok) * 1_000_000 // max(1, sum(r.amount_sat for r in ok) * 1000))
        if ok
        else 0
    )
    return {
        "alias": net.nodes[peer].alias if peer in net.nodes else "",
        "scid": scid,
        "pubkey": peer,
        "status": [f"1:{job.status if job else 'Stopped'}"],
        "rebamount": f"{sum(r.amount_sat for r in ok):,}",
        "w_feeppm": fee_ppm,
        "last_route_taken": f"{ok[-1].hops} hops" if ok else "Never",
        "last_success_reb": local_time(ok[-1].at) if ok else "Never",
    }


def detail(sling: Sling, scid: str) -> dict[str, Any]:
    window = _window(sling, scid)
    ok = [r for r in window if r.ok]
    bad = [r for r in window if not r.ok]
    days = WINDOW_S // 86_400
    successes = None
    if ok:
        ppms = sorted(r.fee_msat * 1_000_000 // (r.amount_sat * 1000) for r in ok)
        partners = Counter(r.partner for r in ok)
        successes = {
            "time_window_days": days,
            "total_amount_sats": sum(r.amount_sat for r in ok),
            "feeppm_weighted_avg": sum(r.fee_msat for r in ok)
            * 1_000_000
            // (sum(r.amount_sat for r in ok) * 1000),
            "feeppm_min": ppms[0],
            "feeppm_max": ppms[-1],
            "feeppm_median": int(statistics.median(ppms)),
            "feeppm_90th_percentile": ppms[min(len(ppms) - 1, int(len(ppms) * 0.9))],
            "top_5_channel_partners": [
                {
                    "scid": s,
                    "alias": "",
                    "sats": sum(r.amount_sat for r in ok if r.partner == s),
                }
                for s, _ in partners.most_common(5)
            ],
            "most_common_hop_count": Counter(r.hops for r in ok).most_common(1)[0][0],
            "time_of_last_rebalance": local_time(ok[-1].at),
            "last_channel_partner": ok[-1].partner,
            "total_rebalances": len(ok),
            "total_spent_sats": sum(r.fee_msat for r in ok) // 1000,
        }
    failures = None
    if bad:
        failures = {
            "time_window_days": days,
            "total_amount_tried_sats": sum(r.amount_sat for r in bad),
            "top_5_failure_reasons": [
                {"failure_reason": k, "failure_count": v}
                for k, v in Counter(r.reason for r in bad).most_common(5)
            ],
            "top_5_fail_nodes": [
                {"peer_id": k, "alias": "", "count": v}
                for k, v in Counter(r.node for r in bad if r.node).most_common(5)
            ],
            "top_5_channel_partners": [
                {"scid": k, "alias": "", "sats": v * 0}
                for k, v in Counter(r.partner for r in bad if r.partner).most_common(5)
            ],
            "most_common_hop_count": 0,
            "time_of_last_attempt": local_time(bad[-1].at),
            "total_rebalances_tried": len(bad),
        }
    return {"successes_in_time_window": successes, "failures_in_time_window": failures}


def local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
