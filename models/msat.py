"""Millisatoshi amounts as plain ints, accepting every form CLN has ever returned.

Nodes older than v23.05 rendered amounts as strings ("1000msat", "1sat", "0.001btc"); current
nodes return integers. Everything inside hiveops is integer msat.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNIT_MSAT = {"msat": 1, "sat": 1_000, "btc": 100_000_000_000}
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(msat|sat|btc)?\s*$")


def parse_msat(value: Any) -> int:
    """Return `value` as integer msat; raise ValueError naming the bad value."""
    if isinstance(value, bool):
        raise ValueError(f"not an msat amount: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative msat amount: {value}")
        return value
    if isinstance(value, float):
        if value < 0 or value != int(value):
            raise ValueError(f"msat amount must be a whole non-negative number: {value!r}")
        return int(value)
    if isinstance(value, str):
        match = _AMOUNT_RE.match(value)
        if match:
            number, unit = match.group(1), match.group(2) or "msat"
            try:
                msat = Decimal(number) * _UNIT_MSAT[unit]
            except InvalidOperation:  # pragma: no cover - regex guarantees a number
                pass
            else:
                if msat == msat.to_integral_value():
                    return int(msat)
    raise ValueError(f"not an msat amount: {value!r} (expected an integer or e.g. '1000msat')")


def parse_msat_or_none(value: Any) -> int | None:
    return None if value is None else parse_msat(value)


Msat = Annotated[int, BeforeValidator(parse_msat)]
