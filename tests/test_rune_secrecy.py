"""No rune leaves its rune_file: a demo run with every member over clnrest is searched for each
rune, and for the webhook URL's token, in everything it produced (stdout/stderr, log records,
files, every warehouse row, Prefect's flow-run parameters, logs and artifacts, the Prefect
server's database, `config check`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from hiveops.configcheck import check_config
from hiveops.demo import run_demo
from warehouse import db

PAGE = 200
WEBHOOK_TOKEN = "T0KEN-e3b0c44298fc1c149afbf4c8996fb924"


def _prefect_texts() -> dict[str, str]:
    from prefect.client.orchestration import get_client

    texts: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        runs, offset = [], 0
        while batch := client.read_flow_runs(limit=PAGE, offset=offset):
            runs += batch
            offset += PAGE
        texts["flow runs"] = repr([(r.name, r.parameters, r.state) for r in runs])
        logs, offset = [], 0
        while batch := client.read_logs(limit=PAGE, offset=offset):
            logs += batch
            offset += PAGE
        texts["prefect logs"] = "\n".join(log.message for log in logs)
        artifacts = client.read_artifacts()
        texts["artifacts"] = repr([(a.key, a.data, a.description) for a in artifacts])
    assert runs and artifacts, "the demo made no flow runs or artifacts: nothing was searched"
    return texts


@pytest.mark.slow
def test_no_rune_appears_in_any_output_of_a_rest_demo_run(
    tmp_path: Path,
    prefect_harness: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    # every loop loads settings holding a webhook URL with a token in it
    monkeypatch.setenv(
        "HIVEOPS_ORCHESTRATION__WEBHOOK_URL", f"https://hooks.example.invalid/{WEBHOOK_TOKEN}"
    )
    workdir = tmp_path / "demo"
    run_demo(days=2, workdir=workdir, rest_members=3)
    config = workdir / "hiveops.toml"
    check_config(config)
    out = capsys.readouterr()
    rune_files = sorted((workdir / "sim").glob("*/hiveops.rune"))
    runes = [p.read_text().strip() for p in rune_files]
    assert len(runes) == 3 and all(len(r) > 40 for r in runes)
    assert "clnrest https://127.0.0.1" in out.out and "rune ********** from rune_file" in out.out

    texts = {"stdout": out.out, "stderr": out.err, "log records": caplog.text}
    for path in workdir.rglob("*"):
        if path.is_file() and path not in rune_files:
            texts[str(path)] = path.read_bytes().decode("latin-1")
    with db.reader(workdir / "hiveops.duckdb") as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        for table in tables:
            texts[f"warehouse.{table}"] = repr(con.execute(f'SELECT * FROM "{table}"').fetchall())
    assert "warehouse.alerts" in texts and "warehouse.heartbeats" in texts
    texts |= _prefect_texts()
    for path in Path(os.environ["PREFECT_HOME"]).rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")

    secrets = [WEBHOOK_TOKEN]
    for rune in runes:
        # the authcode alone is the secret part: a leak of any long piece of it counts
        secrets += [rune, rune[:24], rune[-24:]]
    for piece in secrets:
        leaks = [name for name, text in texts.items() if piece in text]
        assert leaks == [], f"a secret found in {leaks}"
