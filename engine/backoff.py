"""Retry delays: exponential backoff with full jitter, as a pure function of an RNG."""

from __future__ import annotations

import random


def backoff_delays_s(retries: int, base_s: float, max_s: float, rng: random.Random) -> list[float]:
    """Delay before each retry: uniform in [0, min(max_s, base_s * 2**attempt)].

    Full jitter keeps several flows that lost the same node from retrying in lockstep.
    """
    return [rng.uniform(0, min(max_s, base_s * 2**attempt)) for attempt in range(retries)]
