"""The simulator's data ships with the project: nothing is read from beside the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lnsim.schema_check import SHIPPED_SCHEMAS
from lnsim.topology import GRAPH_NAME, graph_dir, read_graph

ROOT = Path(__file__).resolve().parent.parent


def test_the_snapshot_is_read_from_the_package_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVEOPS_GRAPH_DIR", raising=False)
    folder = graph_dir()
    assert Path(str(folder)).resolve() == ROOT / "lnsim" / "data"
    assert read_graph("nodes").height == 17_324  # SOURCE.md's row counts
    assert read_graph("channels").height == 101_616


def test_hiveops_graph_dir_overrides_and_a_wrong_one_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for kind in ("channels", "nodes"):
        shutil.copy(ROOT / "lnsim" / "data" / f"{GRAPH_NAME}.{kind}.parquet", tmp_path)
    monkeypatch.setenv("HIVEOPS_GRAPH_DIR", str(tmp_path))
    assert Path(str(graph_dir())) == tmp_path
    monkeypatch.setenv("HIVEOPS_GRAPH_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="unset HIVEOPS_GRAPH_DIR to use the shipped"):
        graph_dir()


def test_every_schema_the_simulator_is_checked_against_ships_with_it() -> None:
    test = (ROOT / "tests" / "test_sim_schemas.py").read_text()
    shipped = {p.name.removesuffix(".json") for p in SHIPPED_SCHEMAS.iterdir()}
    checked = {m for m in shipped if f'"{m}"' in test}
    assert checked == shipped - {"SOURCE.md"}, "a shipped schema no test uses, or a missing one"


def test_no_code_or_test_reads_the_shared_folder_beside_the_checkout() -> None:
    needle = "shared" + "/"  # split so this file does not match itself
    offenders = [
        str(p.relative_to(ROOT))
        for folder in (
            "hiveops",
            "flows",
            "tasks",
            "engine",
            "models",
            "warehouse",
            "lnsim",
            "bench",
            "tests",
            ".ci",
        )
        for p in (ROOT / folder).rglob("*.py")
        if needle in p.read_text() or "/work/" + "shared" in p.read_text()
    ]
    assert not offenders
