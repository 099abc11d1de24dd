"""Fee changes whose outcome a run never recorded, settled against the fee the node has now.

A change is written `pending` before setchannel. If the run dies (SIGKILL, OOM, power) or the
answer is lost (timeout, dropped socket) it stays pending, and the node may or may not have the
new fee. The next run asks the node and records what happened, so the controller's hysteresis
sees a change that was applied, and no change is applied a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settled:
    change_id: str
    scid: str
    status: str  # 'applied' | 'failed'
    error: str | None


def reconcile(
    pending: list[dict[str, Any]], node_fees: dict[str, tuple[int, int]]
) -> list[Settled]:
    """What each pending change became, given the node's (base_msat, ppm) per scid now."""
    settled = []
    for change in pending:
        scid = change["scid"]
        new = (int(change["new_base_fee_msat"]), int(change["new_fee_ppm"]))
        old = (int(change["old_base_fee_msat"]), int(change["old_fee_ppm"]))
        now = node_fees.get(scid)
        if now == new:
            status, error = "applied", None
        elif now is None:
            status, error = "failed", "channel no longer on the node; the change was not confirmed"
        elif now == old:
            status, error = "failed", "not applied: the node still has the old fee (run stopped)"
        else:
            status = "failed"
            error = (
                f"the node has {now[0]} msat + {now[1]} ppm, neither old nor new: "
                "changed outside hiveops"
            )
        settled.append(Settled(change["change_id"], scid, status, error))
    return settled
