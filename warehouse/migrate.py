"""Ordered SQL migrations, each applied with its bookkeeping row in one transaction."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb

MIGRATION_DIR = Path(__file__).parent / "migrations"
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


def available() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(MIGRATION_DIR.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} must be named NNN_name.sql")
        found.append((int(match.group(1)), match.group(2), path))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {MIGRATION_DIR}")
    return found


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply what is pending; refuse a database from a newer hiveops."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    applied = {
        row[0]: row[1]
        for row in con.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    }
    known = available()
    newest = max((v for v, _, _ in known), default=0)
    if applied and max(applied) > newest:
        raise MigrationError(
            f"warehouse schema is at version {max(applied)} but this hiveops knows only up to "
            f"{newest}; upgrade hiveops or use a different warehouse_path"
        )
    done = []
    for version, name, path in known:
        text = path.read_text()
        checksum = hashlib.sha256(text.encode()).hexdigest()[:16]
        if version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(text)
            con.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                [version, name, checksum],
            )
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise MigrationError(f"migration {path.name} failed: {exc}") from exc
        done.append(version)
    return done
