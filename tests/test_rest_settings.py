"""A node's transport in the config: exactly one of rpc_socket / rest_url, CLN's connection URI,
plain http refused off loopback, the rune kept secret whatever happens to the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config_risks import config_warnings
from hiveops.configcheck import check_config
from models.settings import ConfigError, load_settings

RUNE = "Q3NsXfG3cZrZ0ugr1pJeHxYLG7RQd0xEPCugDCSXmIg9MCZtZXRob2Q9Z2V0aW5mbw=="


def write(tmp_path: Path, node: str) -> Path:
    path = tmp_path / "hiveops.toml"
    path.write_text(f'warehouse_path = "w.duckdb"\n[[nodes]]\nname = "nexus-02"\n{node}\n')
    return path


def test_a_rest_node_resolves_its_paths_and_reads_its_rune_file(tmp_path: Path) -> None:
    (tmp_path / "n2.rune").write_text(RUNE + "\n")
    path = write(
        tmp_path, 'rest_url = "https://10.0.0.12:3010/"\nrune_file = "n2.rune"\nca_cert = "ca.pem"'
    )
    node = load_settings(path).node("nexus-02")
    assert node.transport == "rest" and node.rest_url == "https://10.0.0.12:3010"
    assert node.rune_file == tmp_path / "n2.rune" and node.ca_cert == tmp_path / "ca.pem"
    assert node.load_rune().get_secret_value() == RUNE
    assert RUNE not in repr(node) and RUNE not in node.model_dump_json()


def test_the_connection_uri_form_moves_its_rune_to_the_secret_field(tmp_path: Path) -> None:
    path = write(tmp_path, f'rest_url = "clnrest+https://cln.local:3010?rune={RUNE}"')
    node = load_settings(path).node("nexus-02")
    assert node.rest_url == "https://cln.local:3010"
    assert node.load_rune().get_secret_value() == RUNE
    assert RUNE not in repr(node)
    warnings = " ".join(config_warnings(load_settings(path), []))
    assert "move it to a rune_file" in warnings and RUNE not in warnings


def test_the_environment_rune_beats_an_absent_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEOPS_RUNE_NEXUS_02", RUNE)
    node = load_settings(write(tmp_path, 'rest_url = "https://10.0.0.12:3010"')).node("nexus-02")
    assert node.rune_source() == "$HIVEOPS_RUNE_NEXUS_02"
    assert node.load_rune().get_secret_value() == RUNE


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ('rpc_socket = "a"\nrest_url = "https://h:3010"', "exactly one of rpc_socket"),
        ("fleet_member = true", "exactly one of rpc_socket"),
        ('rest_url = "http://10.0.0.12:3010"', "plain http would send the rune in clear"),
        ('rest_url = "ftp://h:1"', "must look like https://HOST:PORT"),
        ('rest_url = "https://h:3010?certs=QUJD"', "save the node's ca.pem"),
        ('rpc_socket = "a"\nrune_file = "r"', "are for rest_url nodes"),
    ],
)
def test_bad_transports_are_refused_naming_the_fix(tmp_path: Path, node: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, node))


def test_a_rejected_config_never_echoes_the_rune(tmp_path: Path) -> None:
    path = write(tmp_path, f'rest_url = "clnrest+ftp://h:1?rune={RUNE}"\nrune = "{RUNE}"')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert RUNE not in str(err.value)


def test_config_check_shows_the_transport_and_masks_the_rune(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "n2.rune").write_text(RUNE)
    path = write(tmp_path, 'rest_url = "https://10.0.0.12:3010"\nrune_file = "n2.rune"')
    assert check_config(path) == 0
    out = capsys.readouterr().out
    assert (
        "nexus-02: clnrest https://10.0.0.12:3010, system CAs, rune ********** from rune_file"
        in out
    )
    assert RUNE not in out
