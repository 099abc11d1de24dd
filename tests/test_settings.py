from pathlib import Path

import pytest

from engine.config_risks import config_warnings
from models.settings import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text(text)
    return path


def test_bad_value_error_names_key_value_and_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "[rebalance]\nchunk_sat = -5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "rebalance.chunk_sat = -5" in str(err.value)
    assert "greater than 0" in str(err.value)


def test_unknown_key_is_reported_as_a_probable_typo(tmp_path: Path) -> None:
    path = write(tmp_path, "dry_rn = true\n")
    with pytest.raises(ConfigError, match="dry_rn: unknown key"):
        load_settings(path)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--write-config"):
        load_settings(tmp_path / "nope.toml")


def test_environment_overrides_file_and_paths_resolve_against_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        'warehouse_path = "w.duckdb"\n[[nodes]]\nname = "a"\nrpc_socket = "a/rpc"\n'
        "[rebalance]\nchunk_sat = 5000\nmax_fee_ppm = 10\n",
    )
    monkeypatch.setenv("HIVEOPS_DRY_RUN", "true")
    monkeypatch.setenv("HIVEOPS_REBALANCE__CHUNK_SAT", "7000")
    settings = load_settings(path)
    assert settings.dry_run is True
    assert settings.rebalance.chunk_sat == 7000
    assert settings.rebalance.max_fee_ppm == 10
    assert settings.warehouse_path == tmp_path / "w.duckdb"
    assert settings.nodes[0].rpc_socket == tmp_path / "a" / "rpc"


def test_duplicate_node_names_are_rejected(tmp_path: Path) -> None:
    node = '[[nodes]]\nname = "a"\nrpc_socket = "x"\n'
    with pytest.raises(ConfigError, match="appears twice"):
        load_settings(write(tmp_path, node + node))


def test_audit_settings_raise_the_audit_warnings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[nodes]]\nname = "nexus-02"\nrpc_socket = "rpc"\n'
        "[fees]\nmin_fee_ppm = 25\n[rebalance]\nchunk_sat = 200000\n",
    )
    warnings = config_warnings(load_settings(path), [300_000, 350_000, 2_000_000])
    text = "\n".join(warnings)
    assert "rebalance.chunk_sat=200000 exceeds half the median channel" in text
    assert "fees.min_fee_ppm=25 applies to external channels only" in text
    assert "rpc_socket" in text  # the socket does not exist
