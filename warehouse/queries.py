"""Named SQL statements, loaded from warehouse/queries/*.sql.

Each file groups one loop's statements under `-- name: <name>` markers, so the SQL a loop runs
sits in one place and Python refers to it by name (`sql("collect.upsert_forwards")`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERY_DIR = Path(__file__).parent / "queries"
_NAME_RE = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


@cache
def _load(group: str) -> dict[str, str]:
    path = QUERY_DIR / f"{group}.sql"
    text = path.read_text()
    statements: dict[str, str] = {}
    matches = list(_NAME_RE.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        statements[match.group(1)] = body.rstrip(";").strip() if body.count(";") <= 1 else body
    return statements


def sql(qualified_name: str) -> str:
    """Return the statement `group.name`; KeyError names what exists."""
    group, _, name = qualified_name.partition(".")
    statements = _load(group)
    if name not in statements:
        raise KeyError(f"no query {name!r} in {group}.sql (has: {', '.join(sorted(statements))})")
    return statements[name]
