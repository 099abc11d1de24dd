"""Hostile input at the edges: operator SQL, config and policy values, text from a node."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.report.markdown import inert, sanitize
from hiveops.cli import main
from models.fees import FeePolicy
from models.settings import ConfigError, load_settings
from tasks.fees import InvalidPolicy, _policies
from warehouse import db

# -- hiveops sql: read-only in fact --------------------------------------------------------------


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "w.duckdb"}"\n')
    with db.writer(tmp_path / "w.duckdb") as con:
        db.run(
            con,
            "common.insert_alert",
            alert_id="a1",
            raised_at=datetime(2026, 2, 9, tzinfo=UTC),
            loop="collect",
            node=None,
            kind="zero_snapshot",
            severity="critical",
            message="x",
            details="{}",
        )
    db.publish_now(tmp_path / "w.duckdb", loop="collect", run_id="r1")  # what `hiveops sql` reads
    db.release_all()
    return path


HOSTILE_SQL = {
    "insert": ("insert into alerts select * from alerts", "INSERT statements are refused"),
    "update": ("update alerts set message = 'y'", "UPDATE statements are refused"),
    "delete": ("delete from alerts", "DELETE statements are refused"),
    "drop": ("drop table alerts", "DROP statements are refused"),
    "create_temp": ("create temp table t as select 1", "CREATE statements are refused"),
    "attach": ("attach '{tmp}/other.duckdb' as o", "ATTACH statements are refused"),
    "copy_to": ("copy alerts to '{tmp}/out.csv'", "COPY statements are refused"),
    "export": ("export database '{tmp}/dump'", "EXPORT statements are refused"),
    "install": ("install httpfs", "LOAD statements are refused"),
    "load": ("load httpfs", "LOAD statements are refused"),
    "set": ("set enable_external_access = true", "SET statements are refused"),
    "pragma": ("pragma enable_profiling", "PRAGMA statements are refused"),
    "checkpoint": ("checkpoint", "CALL statements are refused"),
    "second_statement": ("select 1; delete from alerts", "DELETE statements are refused"),
    "read_csv": (
        "select * from read_csv('/etc/passwd')",
        "file system operations are disabled by configuration (hiveops sql reads the "
        "warehouse only, never other files)",
    ),
    "read_text": (
        "select * from read_text('/etc/hostname')",
        "file system operations are disabled",
    ),
    "glob": ("select * from glob('/etc/*')", "file system operations are disabled"),
    "file_beside_the_warehouse": (
        "select * from read_text('{tmp}/hiveops.toml')",
        "file system operations are disabled",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SQL))
def test_sql_refuses(
    name: str, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query, says = HOSTILE_SQL[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["sql", "--config", str(warehouse), query.format(tmp=tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hiveops sql: ") and says in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file written
    assert main(["sql", "--config", str(warehouse), "--csv", "select message from alerts"]) == 0
    assert capsys.readouterr().out.splitlines() == ["message", "x"]  # nothing changed


# -- config and policies: refused at load with the file and line ---------------------------------

BAD_CONFIG = {
    "wrong_type": ('[rpc]\ntimeout_s = "soon"\n', 2, "rpc.timeout_s = 'soon'"),
    "unknown_key": ("[fees]\nmax_fee_pmm = 100\n", 2, "fees.max_fee_pmm: unknown key"),
    "unknown_section": ("[feez]\nmax_fee_ppm = 100\n", 1, "feez: unknown key"),
    "absurd_fee": ("[fees]\nmax_fee_ppm = 1000000000\n", 2, "less than or equal to 50000"),
    "negative_budget": ("[budget]\ndaily_budget_sat = -1\n", 2, "greater than or equal to 0"),
    "absurd_budget": ("[budget]\ndaily_budget_sat = 10000000000\n", 2, "less than or equal"),
    "floor_above_ceiling": (
        "[fees]\nmin_fee_ppm = 900\nmax_fee_ppm = 100\n",
        1,
        "min_fee_ppm=900 is above max_fee_ppm=100",
    ),
    "bad_node_name": (
        '[[nodes]]\nname = "ok"\nrpc_socket = "/x"\n[[nodes]]\nname = "a|b"\nrpc_socket = "/y"\n',
        5,
        "nodes.1.name = 'a|b'",
    ),
    "negative_chunk": ("[rebalance]\nchunk_sat = -5\n", 2, "rebalance.chunk_sat = -5"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIG))
def test_config_refused_with_file_and_line(name: str, tmp_path: Path) -> None:
    body, line, says = BAD_CONFIG[name]
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "{tmp_path / "w.duckdb"}"\n' + body)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert f"{path}:{line + 1}: " in message, message
    assert says in message, message


def test_config_not_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "hiveops.toml"
    path.write_text("dry_run = true\n[fees\nmax_fee_ppm = 1\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid TOML: .*line 2"):
        load_settings(path)


@pytest.mark.parametrize(
    "args",
    [
        ["--kind", "static", "--ppm", "1000000000"],
        ["--kind", "static", "--ppm", "-1"],
        ["--kind", "dynamic", "--max-ppm", "1000000000"],
        ["--kind", "static", "--ppm", "100", "--base-msat", "999999999"],
    ],
    ids=["ppm_1e9", "ppm_negative", "max_1e9", "base_absurd"],
)
def test_policy_cli_refuses_absurd_values(
    args: list[str], warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = "02" + "ab" * 32
    code = main(["policy", "set", "--peer", peer, *args, "--config", str(warehouse)])
    assert code != 0
    err = capsys.readouterr().err
    assert "hiveops policy:" in err and "Traceback" not in err, err
    assert main(["policy", "list", "--config", str(warehouse)]) == 0
    assert peer not in capsys.readouterr().out


def test_a_hand_edited_policy_row_stops_the_fees_loop_by_name() -> None:
    row = {
        "policy_id": "peer:02aa",
        "kind": "static",
        "peer_id": "02aa",
        "scid": None,
        "base_fee_msat": 0,
        "fee_ppm": 1_000_000_000,
        "min_fee_ppm": None,
        "max_fee_ppm": None,
        "expires_at": None,
        "created_at": None,
        "note": "",
    }
    with pytest.raises(InvalidPolicy) as err:
        _policies([row])
    message = str(err.value)
    assert "fee policy peer:02aa in the warehouse is invalid (fee_ppm = 1000000000" in message
    assert "hiveops policy delete" in message
    fixed = {**row, "fee_ppm": 500}
    assert _policies([fixed]) == (
        FeePolicy.model_validate({k: v for k, v in fixed.items() if k != "policy_id"}),
    )


# -- text from a node in the report ------------------------------------------------------------

HOSTILE_TEXT = (
    "<script>alert(1)</script> | **bold** [link](http://x) `code`\x1b[31m\x00\n# head\r\x7f"
)


def test_inert_text_is_one_plain_line() -> None:
    text = sanitize(inert(HOSTILE_TEXT))
    assert "\n" not in text and "\x1b" not in text and "\x00" not in text and "\x7f" not in text
    assert "<" not in text and ">" not in text
    assert "\\|" in text and "\\*\\*bold\\*\\*" in text and "\\[link\\]" in text
    assert "\\# head" in text
