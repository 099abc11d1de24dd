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
