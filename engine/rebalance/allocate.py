"""Sharing one run's attempts and budget among the destinations that passed the gate (pure).

Fleet assistance goes first (the operator asked for it), then pulls by predicted benefit, so
a tight budget goes to the pull most likely to pay. A pull too expensive for what is left is
offered a smaller amount (re-planned and re-gated by the caller's `refit`, never scaled by
guesswork) before it is refused: on a node earning 45 sat a day the budget is a dozen sat, and
a 40 k sat pull that fits beats a 56 k sat one that does not. One too expensive for what is
left does not stop a cheaper one behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.budget import BudgetLedger
from models.rebalance import MSAT_PER_SAT, PPM, RebalanceProposal, Skip, SkipReason
from models.settings import RebalanceConfig

Refit = Callable[[RebalanceProposal, int], RebalanceProposal | None]
REFIT_TRIES = 2


def allocate(
    ready: Sequence[RebalanceProposal],
    ledger: BudgetLedger,
    available_msat: int,
    config: RebalanceConfig,
    refit: Refit,
) -> tuple[list[RebalanceProposal], list[Skip]]:
    """(accepted proposals in execution order, skips for the ones left out)."""
    left_msat = available_msat
    accepted: list[RebalanceProposal] = []
    refused: list[Skip] = []
    limit = config.max_attempts_per_run
    for proposal in sorted(
        ready, key=lambda p: (not p.exempt_from_ev, -p.predicted_benefit_msat, p.dest_scid)
    ):
        if len(accepted) >= limit:
            why = f"rebalance.max_attempts_per_run={limit} used by pulls ranked higher"
            refused.append(skip_from(proposal, SkipReason.ATTEMPT_LIMIT, why))
            continue
        fitted = proposal if proposal.max_cost_msat <= left_msat else None
        candidate = proposal
        for _ in range(REFIT_TRIES if fitted is None else 0):
            cap_msat = _amount_cap_msat(candidate, left_msat)
            smaller = refit(candidate, cap_msat) if cap_msat else None
            if smaller is None:
                break
            if smaller.max_cost_msat <= left_msat:
                fitted = smaller.model_copy(
                    update={"inputs": {**smaller.inputs, "refit_from_msat": proposal.amount_msat}}
                )
                break
            candidate = smaller
        if fitted is None:
            why = (
                f"worst-case fee {proposal.max_cost_msat / MSAT_PER_SAT:g} sat exceeds the "
                f"{left_msat / MSAT_PER_SAT:g} sat left of {ledger.day}'s "
                f"{ledger.budget_msat / MSAT_PER_SAT:g} sat budget, even at a smaller amount"
            )
            refused.append(skip_from(proposal, SkipReason.BUDGET_EXHAUSTED, why))
            continue
        accepted.append(fitted)
        left_msat -= fitted.max_cost_msat
    return accepted, refused


def _amount_cap_msat(proposal: RebalanceProposal, left_msat: int) -> int:
    """The largest amount whose worst-case fee at this maxppm fits in `left_msat`."""
    if proposal.maxppm == 0:
        return proposal.amount_msat
    cap_msat = left_msat * PPM // proposal.maxppm
    return cap_msat - cap_msat % MSAT_PER_SAT


def skip_from(proposal: RebalanceProposal, reason: SkipReason, detail: str) -> Skip:
    """A proposal that passed the gate but lost the run's allocation, with its numbers kept."""
    inputs = {
        **proposal.inputs,
        "amount_msat": proposal.amount_msat,
        "maxppm": proposal.maxppm,
        "max_cost_msat": proposal.max_cost_msat,
        "predicted_benefit_msat": proposal.predicted_benefit_msat,
    }
    return Skip(scid=proposal.dest_scid, reason=reason, detail=detail, inputs=inputs)
