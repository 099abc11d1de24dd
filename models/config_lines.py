"""Where each key of a TOML file is, so a config error can say `hiveops.toml:12`.

tomllib keeps no positions; this reads the lines back: table headers (`[fees]`), arrays of
tables (`[[nodes]]`, counted) and `key = value` lines under them. Best effort by design: a key
it cannot place (a multi-line value's inner line, an environment override) gets no line.
"""

from __future__ import annotations

import re

_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")

Path = tuple[str | int, ...]


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'") for p in dotted.split("."))


def key_lines(text: str) -> dict[Path, int]:
    """Every key path (tables, array entries by index, keys) and its 1-based line."""
    lines: dict[Path, int] = {}
    counts: dict[tuple[str, ...], int] = {}
    current: Path = ()
    depth = 0  # open brackets of a multi-line array value
    for number, line in enumerate(text.splitlines(), start=1):
        if depth:
            depth += line.count("[") - line.count("]")
            continue
        if match := _ARRAY.match(line):
            name = _parts(match.group(1))
            index = counts.get(name, 0)
            counts[name] = index + 1
            current = (*name, index)
            lines.setdefault(current, number)
            lines.setdefault(name, number)
        elif match := _TABLE.match(line):
            current = _parts(match.group(1))
            lines.setdefault(current, number)
        elif match := _KEY.match(line):
            lines.setdefault((*current, *_parts(match.group(1))), number)
            value = line[match.end() :]
            depth = max(0, value.count("[") - value.count("]"))
    return lines


def line_of(lines: dict[Path, int], loc: Path) -> int | None:
    """The line of `loc`, or of the nearest enclosing table that is in the file."""
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None
