"""A warehouse connection that can neither write nor touch files: what operators' SQL runs on.

Read-only by DuckDB's own mode (no INSERT/UPDATE/DDL on the warehouse), with file system access,
extension loading and every setting locked at connect, so `ATTACH`, `COPY ... TO`, `INSTALL`,
`LOAD`, `read_csv('/etc/...')` and `SET` fail inside DuckDB whatever the statement looks like.
On top, only SELECT-like statements are accepted, so the refusal says what was refused and why
(a temp table or a macro would otherwise be allowed in DuckDB's temp catalog).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse import db

HARDENED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}
ALLOWED = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyRefused(ValueError):
    """A statement hiveops sql does not run; the message says which and why."""


def check(query: str) -> None:
    """Refuse anything but queries, naming the first statement that is not one."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise ReadOnlyRefused(str(exc).splitlines()[0]) from exc
    if not statements:
        raise ReadOnlyRefused("no statement given")
    for statement in statements:
        if statement.type not in ALLOWED:
            kind = statement.type.name
            text = " ".join(statement.query.split())[:60]
            raise ReadOnlyRefused(
                f"{kind} statements are refused ({text!r}): hiveops sql is read-only and runs "
                f"SELECT and EXPLAIN only; the loops own the warehouse's writes, settings are "
                f"fixed, and files are out of reach (use --csv or --json and redirect the output)"
            )


@contextmanager
def connect(db_path: Path, *, timeout_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A hardened read-only connection; waits (bounded) while a writer holds the file."""
    db_path = Path(db_path).resolve()
    if not db_path.exists():
        raise FileNotFoundError(
            f"warehouse {db_path} does not exist yet; run `hiveops run collect` first"
        )
    db.release_all()  # DuckDB refuses a read-only open of a file this process holds read-write
    con = db.connect_with(
        db_path, read_only=True, deadline=time.monotonic() + timeout_s, config=dict(HARDENED)
    )
    try:
        con.execute("SET lock_configuration = true")  # after TimeZone: nothing can be SET back
        yield con
    finally:
        con.close()
