import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiveops.cli import main
from warehouse import db

ALERT = (
    "INSERT INTO alerts (alert_id, raised_at, loop, kind, severity, message) "
    "VALUES ('{id}', '2026-02-09 00:00:00+00', 'collect', 'zero_snapshot', 'critical', 'x')"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A published copy with one alert; the live file has a second one written after it."""
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "w.duckdb"}"\n')
    with db.writer(tmp_path / "w.duckdb") as con:
        con.execute(ALERT.format(id="a1"))
    db.publish_now(tmp_path / "w.duckdb", loop="test", run_id="r1")
    with db.writer(tmp_path / "w.duckdb") as con:
        con.execute(ALERT.format(id="a2"))
    db.release_all()
    return path


def test_sql_prints_csv_and_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--config", str(config), "--csv", "select kind, severity from alerts"]) == 0
    assert capsys.readouterr().out.splitlines() == ["kind,severity", "zero_snapshot,critical"]
    assert main(["sql", "--config", str(config), "--json", "select count(*) n from alerts"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]


def test_sql_reads_the_copy_and_live_reads_the_live_file(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "select count(*) n, max(raised_at) last_at from alerts"
    assert main(["sql", "--config", str(config), "--json", query]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1, "last_at": "2026-02-09T00:00:00+00:00"}]
    assert main(["sql", "--config", str(config), "--live", "--json", query]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] == 2
    fresh = "select loop, run_id from read_copy_freshness"
    assert main(["sql", "--config", str(config), fresh]) == 0
    table = capsys.readouterr().out
    assert "│ test " in table and "│ r1 " in table and "varchar" in table


def test_sql_refuses_writes(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--config", str(config), "delete from alerts"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["sql", "--config", str(config), "--live", "delete from alerts"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_sql_reports_a_missing_warehouse_and_a_missing_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "none.duckdb"}"\n')
    assert main(["sql", "--config", str(path), "select 1"]) == 2
    assert "does not exist yet; run `hiveops run collect`" in capsys.readouterr().err
    with db.writer(tmp_path / "none.duckdb"):
        pass
    db.release_all()
    assert main(["sql", "--config", str(path), "select 1"]) == 2
    err = capsys.readouterr().err
    assert "read copy" in err and "does not exist yet" in err and "--live" in err
    assert main(["sql", "--config", str(path), "--live", "select 1"]) == 0


def test_config_check_reports_bad_key_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hiveops.toml"
    path.write_text("[fees]\nmax_fee_ppm = 0\n")
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fees.max_fee_ppm = 0" in err and "greater than or equal to 1" in err


def test_sql_on_the_copy_imports_no_prefect_polars_or_pydantic(config: Path) -> None:
    """`select 1` has a 0.3 s budget; prefect alone imports in about 1 s, polars in 0.3 s."""
    code = (
        "import sys\n"
        "from hiveops.cli import main\n"
        f"assert main(['sql', '--config', {str(config)!r}, '--json', 'select 1 as one']) == 0\n"
        "heavy = {'prefect', 'polars', 'pydantic', 'pydantic_settings', 'pyarrow'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == ['[{"one": 1}]', "[]"]


def test_rebalance_policies_from_the_cli_and_config_check_warns_on_a_contradiction(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(config)]
    assert main(["policy", "rebalance", "set", "--scid", "1x1x0", "--mode", "never", *args]) == 0
    assert "set scid:1x1x0: rebalance never" in capsys.readouterr().out
    assert main(["policy", "rebalance", "set", "--peer", "03bb", "--mode", "sink-only", *args]) == 0
    assert main(["policy", "rebalance", "get", "--scid", "1x1x0", *args]) == 0
    assert "never" in capsys.readouterr().out
    assert main(["policy", "rebalance", "get", "--scid", "9x9x9", *args]) == 1
    assert "(auto)" in capsys.readouterr().out
    assert main(["policy", "rebalance", "resume", "--scid", "1x1x0", *args]) == 0
    assert "resumed 1x1x0" in capsys.readouterr().out
    with db.reader(config.parent / "w.duckdb") as con:
        assert con.execute("select count(*) from rebalance_resumes").fetchone() == (1,)
    # fee policies keep their own commands beside it
    assert main(["policy", "list", *args]) == 0
    capsys.readouterr()

    assert main(["config", "check", *args]) == 0
    assert "forbids" not in capsys.readouterr().out  # no open request yet
    with db.writer(config.parent / "w.duckdb") as con:
        con.execute(
            "INSERT INTO fleet_assistance (assistance_id, run_id, node_id, member_name, kind,"
            " dest_scid, amount_msat, max_fee_ppm, reason, requested_at, state) VALUES"
            " ('f1', 'r', '02aa', 'nexus-03', 'liquidity_pull', '1x1x0', 100000000, 500,"
            " 'critical', '2026-02-09 00:00:00+00', 'open')"
        )
    assert main(["config", "check", *args]) == 0
    out = capsys.readouterr().out
    assert "warning: rebalance policy never (scid:1x1x0) forbids refilling 1x1x0" in out
    assert main(["policy", "rebalance", "delete", "--scid", "1x1x0", *args]) == 0
    capsys.readouterr()
    assert main(["config", "check", *args]) == 0
    assert "forbids" not in capsys.readouterr().out
