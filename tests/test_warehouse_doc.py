"""docs/WAREHOUSE.md cannot rot: every table and view is described, and every example query runs
against a demo warehouse and answers with rows."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.collect import collect
from flows.common import LoopFailed
from hiveops.demo import run_demo
from warehouse import db

DOC = Path(__file__).resolve().parent.parent / "docs" / "WAREHOUSE.md"
# `make demo`'s scenario, two days: every loop has run, the first rebalances have finished.
DEMO_DAYS = 2

pytestmark = pytest.mark.slow


def example_queries() -> list[str]:
    section = DOC.read_text().split("## Ten questions an operator asks", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    workdir = tmp_path_factory.mktemp("warehouse-doc") / "demo"
    run_demo(days=DEMO_DAYS, workdir=workdir, scenario="audit")
    warehouse = workdir / "hiveops.duckdb"
    # An operator's warehouse also holds failed runs: collect once more after the simulated
    # fleet has stopped, so its nodes cannot be reached.
    db.release_all()  # the demo's writer connection: DuckDB opens a file one way per process
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (last,) = con.execute("SELECT max(started_at) FROM heartbeats").fetchone()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIVEOPS_RPC__RETRIES", "0")
        mp.setenv("HIVEOPS_RPC__TIMEOUT_S", "2")
        with pytest.raises(LoopFailed):
            collect(
                config_path=str(workdir / "hiveops.toml"),
                now=(last + timedelta(hours=1)).timestamp(),
            )
    db.release_all()  # the failed collect's connection, likewise
    return warehouse


def test_the_document_has_ten_example_queries() -> None:
    assert len(example_queries()) == 10


@pytest.mark.timeout(1800)  # the first test pays for the demo (a minute idle; 20 busy)
def test_every_table_and_view_is_described(demo_warehouse: Path) -> None:
    doc = DOC.read_text()
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
    missing = sorted(n for n in names if f"| `{n}` |" not in doc)
    assert not missing, f"docs/WAREHOUSE.md does not describe {missing}"


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("number", range(1, 11))
def test_each_example_query_answers_on_the_demo_warehouse(
    demo_warehouse: Path, number: int
) -> None:
    query = example_queries()[number - 1]
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, f"question {number} of docs/WAREHOUSE.md returned no rows:\n{query}"
