import json
from pathlib import Path

import pytest

from hiveops.cli import main
from warehouse import db


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "w.duckdb"}"\n')
    with db.writer(tmp_path / "w.duckdb") as con:
        con.execute(
            "INSERT INTO alerts (alert_id, raised_at, loop, kind, severity, message) "
            "VALUES ('a1', '2026-02-09 00:00:00+00', 'collect', 'zero_snapshot', 'critical', 'x')"
        )
    return path


def test_sql_prints_csv_and_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--config", str(config), "--csv", "select kind, severity from alerts"]) == 0
    assert capsys.readouterr().out.splitlines() == ["kind,severity", "zero_snapshot,critical"]
    assert main(["sql", "--config", str(config), "--json", "select count(*) n from alerts"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]


def test_sql_refuses_writes(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--config", str(config), "delete from alerts"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_sql_reports_a_missing_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "none.duckdb"}"\n')
    assert main(["sql", "--config", str(path), "select 1"]) == 2
    assert "does not exist yet" in capsys.readouterr().err


def test_config_check_reports_bad_key_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hiveops.toml"
    path.write_text("[fees]\nmax_fee_ppm = 0\n")
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fees.max_fee_ppm = 0" in err and "greater than or equal to 1" in err
