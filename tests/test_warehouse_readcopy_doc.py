"""docs/WAREHOUSE.md's examples for reading the copy run as written, against a published copy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warehouse import db

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Reading while the loops run"
BLOCK_RE = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
VENV_BIN = Path(sys.executable).parent


def examples() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "WAREHOUSE.md").read_text()
    section = text[text.index(SECTION) :]
    end = section.find("\n## ", len(SECTION))
    section = section if end < 0 else section[:end]
    return [(m.group(1), m.group(2)) for m in BLOCK_RE.finditer(section)]


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A warehouse as the docs assume it: ./hiveops.toml, a few rows, a published copy."""
    (tmp_path / "hiveops.toml").write_text('warehouse_path = "hiveops.duckdb"\n')
    live = tmp_path / "hiveops.duckdb"
    now = datetime.now(UTC)
    with db.writer(live) as con:
        for loop in ("collect", "fees"):
            db.run(con, "common.heartbeat_start", run_id="r1", loop=loop, node="n1", started_at=now)
        con.execute(
            "INSERT INTO nodes VALUES (?, 'n1', NULL, true, NULL, 'regtest', 1, ?, ?)",
            ["02" + "ab" * 32, now, now],
        )
    db.publish_now(live, loop="collect", run_id="r1")
    db.release_all()
    return tmp_path


def test_the_doc_has_shell_and_python_examples() -> None:
    kinds = [kind for kind, _ in examples()]
    assert kinds.count("sh") >= 3 and kinds.count("python") >= 2


@pytest.mark.parametrize(
    ("kind", "code"), examples(), ids=lambda v: v.splitlines()[0][:60] if "\n" in v else v
)
def test_doc_example_runs(published: Path, kind: str, code: str) -> None:
    if kind == "python":
        commands = [[sys.executable, "-c", code]]
    else:
        commands = []
        for line in code.strip().splitlines():
            argv = shlex.split(line)
            argv[0] = argv[0].replace(".venv/bin/", f"{VENV_BIN}/")
            commands.append(argv)
    for argv in commands:
        done = subprocess.run(argv, cwd=published, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (argv, done.stderr)
        assert done.stdout.strip(), argv
