"""The rune modes hold exactly the methods the code calls: a new call outside every list, or a
list entry nothing calls any more, fails here (tests/test_rest_loops.py then checks each loop
against its own mode's rune on the simulator)."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

from hiveops.cli import main
from models.runes import (
    ACT_METHODS,
    ADVISOR_EXEC_METHODS,
    READ_METHODS,
    allowed_methods,
    rune_flags,
)

ROOT = Path(__file__).resolve().parents[1]
CALLERS = ("call", "call_parsed")


def called_methods() -> dict[str, set[str]]:
    """Every literal method name passed to the gateway, by the module that passes it."""
    found: dict[str, set[str]] = {}
    for folder in ("tasks", "flows", "hiveops"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in CALLERS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.setdefault(node.args[0].value, set()).add(path.name)
    return found


def test_the_modes_hold_exactly_what_the_code_calls() -> None:
    called = called_methods()
    listed = set(READ_METHODS + ACT_METHODS + ADVISOR_EXEC_METHODS)
    assert set(called) - listed == set(), {m: called[m] for m in set(called) - listed}
    assert listed - set(called) == set()


def test_the_read_mode_holds_no_method_that_changes_the_node() -> None:
    called = called_methods()
    for method in READ_METHODS:
        assert method.startswith(("get", "list", "bkpr-list")) or method == "bkpr-channelsapy", (
            method
        )
    for method in ACT_METHODS:
        assert called[method] <= {"fees.py", "htlcmax.py", "sling.py", "rebalance_jobs.py"}, method
    for method in ADVISOR_EXEC_METHODS:
        assert called[method] == {"advisor.py"}, method


def test_each_method_points_at_the_narrowest_mode() -> None:
    assert rune_flags("listforwards") == "--mode read"
    assert rune_flags("sling-once") == "--mode act"
    assert rune_flags("fundchannel") == "--mode act --advisor-exec"
    assert rune_flags("withdraw") is None
    assert "setchannel" not in allowed_methods("read")
    assert "fundchannel" not in allowed_methods("act")


def test_hiveops_rune_prints_a_createrune_command_with_the_modes_methods(capsys) -> None:  # type: ignore[no-untyped-def]
    for argv, methods in (
        (["rune", "--mode", "read"], READ_METHODS),
        (["rune", "--mode", "act"], READ_METHODS + ACT_METHODS),
        (["rune", "--mode", "act", "--advisor-exec"], allowed_methods("act", True)),
    ):
        assert main(argv) == 0
        out = capsys.readouterr().out
        command = next(line for line in out.splitlines() if line.startswith("lightning-cli"))
        words = shlex.split(command)
        assert words[:2] == ["lightning-cli", "createrune"]
        restrictions = json.loads(words[2].removeprefix("restrictions="))
        assert restrictions == [[f"method={m}" for m in methods]]
