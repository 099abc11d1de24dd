"""What every channel model with a balance shares: the capacity check and the local share."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, model_validator


class ChannelBalance(BaseModel):
    """Mixed into models that declare `scid`, `capacity_msat` and `local_msat`."""

    @model_validator(mode="after")
    def _local_within_capacity(self) -> Self:
        local, capacity = self.local_msat, self.capacity_msat  # type: ignore[attr-defined]
        if local > capacity:
            raise ValueError(
                f"channel {self.scid}: local_msat={local} exceeds "  # type: ignore[attr-defined]
                f"capacity_msat={capacity}"
            )
        return self

    @property
    def local_share(self) -> float:
        return self.local_msat / self.capacity_msat  # type: ignore[attr-defined]
