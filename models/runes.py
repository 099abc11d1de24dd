"""Which node methods each kind of hiveops run may call: the narrowest rune per mode.

The lists are what the loops call (tests/test_rune_modes.py fails if a task calls a method no
list holds, if a list holds one nobody calls, and if a loop run over REST with its mode's rune
is refused). `hiveops rune` turns them into a `lightning-cli createrune` command.
"""

from __future__ import annotations

import json
import shlex
from typing import Literal

Mode = Literal["read", "act"]

# collect, report, outcomes and the advisor's scan read the node and nothing else.
READ_METHODS: tuple[str, ...] = (
    "getinfo",
    "listpeerchannels",
    "listfunds",
    "listforwards",
    "listchannels",
    "bkpr-listincome",
    "bkpr-channelsapy",
)
# fees sets channel fees; rebalance and fleet assistance drive the sling plugin.
ACT_METHODS: tuple[str, ...] = (
    "setchannel",
    "sling-once",
    "sling-stats",
    "sling-jobsettings",
    "sling-stop",
    "sling-deletejob",
)
# advisor-execute opens and closes channels once an operator approved it.
ADVISOR_EXEC_METHODS: tuple[str, ...] = ("connect", "fundchannel", "close")


def allowed_methods(mode: Mode, advisor_exec: bool = False) -> tuple[str, ...]:
    methods = READ_METHODS + (ACT_METHODS if mode == "act" else ())
    return methods + (ADVISOR_EXEC_METHODS if advisor_exec else ())


def restrictions(mode: Mode, advisor_exec: bool = False) -> list[list[str]]:
    """One restriction whose alternatives are the allowed methods (`method=A|method=B...`)."""
    return [[f"method={m}" for m in allowed_methods(mode, advisor_exec)]]


def rune_flags(method: str) -> str | None:
    """The narrowest `hiveops rune` flags whose rune allows `method`, None if none does."""
    if method in READ_METHODS:
        return "--mode read"
    if method in ACT_METHODS:
        return "--mode act"
    if method in ADVISOR_EXEC_METHODS:
        return "--mode act --advisor-exec"
    return None


def createrune_command(mode: Mode, advisor_exec: bool = False) -> str:
    """The command an operator runs on the node's host (lightning-cli talks to its socket)."""
    arg = "restrictions=" + json.dumps(restrictions(mode, advisor_exec), separators=(",", ":"))
    return f"lightning-cli createrune {shlex.quote(arg)}"
