"""An operator's rebalance mode per channel or peer (issue #16): CLBOSS-style opt-out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import model_validator

from models.frozen import Frozen as _Frozen


class RebalanceMode(StrEnum):
    """What an operator lets the rebalancer do with a channel (CLBOSS-style opt-out)."""

    AUTO = "auto"  # destination or source, as the planner judges
    NEVER = "never"  # neither: its liquidity is left alone
    SOURCE_ONLY = "source-only"  # may feed pulls, is never refilled
    SINK_ONLY = "sink-only"  # may be refilled, never drained for another channel

    @property
    def may_receive(self) -> bool:
        return self in (RebalanceMode.AUTO, RebalanceMode.SINK_ONLY)

    @property
    def may_feed(self) -> bool:
        return self in (RebalanceMode.AUTO, RebalanceMode.SOURCE_ONLY)


class RebalancePolicy(_Frozen):
    """An operator's rebalance mode for one channel (`scid`) or every channel to a peer."""

    mode: RebalanceMode
    peer_id: str | None = None
    scid: str | None = None
    created_at: datetime | None = None
    note: str = ""

    @model_validator(mode="after")
    def _scoped(self) -> RebalancePolicy:
        if self.peer_id is None and self.scid is None:
            raise ValueError("a rebalance policy needs --peer or --scid (what it applies to)")
        return self

    @property
    def policy_id(self) -> str:
        return f"scid:{self.scid}" if self.scid is not None else f"peer:{self.peer_id}"
