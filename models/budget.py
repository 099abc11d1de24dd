"""The daily rebalance budget: reservations, refusals, settlements and the ledger row.

The audit's budget table read 0 on every row; here every field comes from facts (settled forward
fees, rebalance fees, on-chain costs, open reservations). All money is integer msat.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field, model_validator

from models.frozen import Frozen as _Frozen


class Reservation(_Frozen):
    """Budget held for one attempt's worst-case fee until it is settled or released."""

    attempt_id: str
    node_id: str
    max_fee_msat: int = Field(ge=0)
    reserved_at: datetime
    scid: str | None = None


class RefusalReason(StrEnum):
    BUDGET_EXHAUSTED = "budget_exhausted"


class Refusal(_Frozen):
    attempt_id: str
    reason: RefusalReason
    detail: str
    available_msat: int = Field(ge=0)
    requested_msat: int = Field(ge=0)


class Settlement(_Frozen):
    """A reservation closed with the fee actually paid; overspend is booked, never hidden."""

    attempt_id: str
    reserved_msat: int = Field(ge=0)
    fee_msat: int = Field(ge=0)
    released_msat: int = Field(ge=0)
    overspend_msat: int = Field(ge=0)


class BudgetLedger(_Frozen):
    """One node's rebalance budget for one UTC day: the row the audit found all-zero.

    budget = min(fixed daily cap, max(seed, share_of_earnings × trailing daily earnings)).
    spent = rebalance fees + on-chain costs booked that day; reserved = open reservations (of
    any day: they still hold money at risk). Invariant kept by reserve/settle/release:
    spent + reserved ≤ budget, unless facts from outside (an on-chain cost, a fee above its
    reservation) already broke it, in which case nothing more is reserved.
    """

    node_id: str
    day: date
    budget_msat: int = Field(ge=0)
    fixed_budget_msat: int = Field(ge=0)
    earnings_budget_msat: int = Field(ge=0)
    earned_msat: int = Field(ge=0)
    trailing_earned_msat: int = Field(ge=0)
    earnings_window_days: int = Field(ge=1)
    rebalance_spent_msat: int = Field(default=0, ge=0)
    onchain_spent_msat: int = Field(default=0, ge=0)
    reservations: tuple[Reservation, ...] = ()

    @model_validator(mode="after")
    def _unique_attempts(self) -> BudgetLedger:
        ids = [r.attempt_id for r in self.reservations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"ledger {self.node_id} {self.day}: reservation ids repeat")
        return self

    @property
    def spent_msat(self) -> int:
        return self.rebalance_spent_msat + self.onchain_spent_msat

    @property
    def reserved_msat(self) -> int:
        return sum(r.max_fee_msat for r in self.reservations)
