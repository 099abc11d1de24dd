"""`hiveops rune --mode read|act [--advisor-exec]`: the createrune command for the narrowest rune
a mode needs, to run on the node's own host (lightning-cli talks to its local socket)."""

from __future__ import annotations

import argparse

from models.runes import ACT_METHODS, ADVISOR_EXEC_METHODS, allowed_methods, createrune_command

MODE_LOOPS = {
    "read": "collect, report, outcomes, watchdog and the advisor's scan",
    "act": "the read loops plus fees (setchannel) and rebalance / fleet assistance (sling)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rune = sub.add_parser(
        "rune", help="print the lightning-cli createrune command for a least-privilege rune"
    )
    rune.add_argument("--mode", choices=sorted(MODE_LOOPS), required=True)
    rune.add_argument(
        "--advisor-exec",
        action="store_true",
        help="also allow advisor-execute to open and close channels (connect, fundchannel, close)",
    )
    rune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(rune_text(args.mode, args.advisor_exec))
    return 0


def rune_text(mode: str, advisor_exec: bool) -> str:
    loops = MODE_LOOPS[mode] + (" and advisor-execute" if advisor_exec else "")
    methods = allowed_methods(mode, advisor_exec)  # type: ignore[arg-type]
    lines = [
        f"# a rune for {loops}: {len(methods)} methods, nothing else",
        "# run this on the node's host, then save the \"rune\" it prints in the node's rune_file",
        "# (chmod 600) or in $HIVEOPS_RUNE_<NAME>; never in hiveops.toml",
        createrune_command(mode, advisor_exec),  # type: ignore[arg-type]
    ]
    if mode == "read":
        lines.append(f"# not allowed: {', '.join(ACT_METHODS + ADVISOR_EXEC_METHODS)}")
    elif not advisor_exec:
        lines.append(f"# not allowed: {', '.join(ADVISOR_EXEC_METHODS)} (add --advisor-exec)")
    return "\n".join(lines)
