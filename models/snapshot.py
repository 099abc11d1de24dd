"""What one collect cycle reads from one node."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from models.cln import GetInfo, ListFunds, PeerChannel


class NodeState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    is_fleet: bool
    taken_at: datetime
    info: GetInfo
    channels: list[PeerChannel]
    funds: ListFunds
