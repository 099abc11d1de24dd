"""Shared fixtures: real DuckDB files in tmp, Prefect's test harness, the simulator on sockets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Task-run rows contend with flow-run creation for the test server's SQLite (HTTP 503 and a 2 s
# client backoff per flow run); flow runs, their states and events are still recorded.
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test server for the session (about 10 s to start; paid once; a busy machine
    has taken over 90 s to migrate its new database)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    # The heartbeat thread is joined in 1 s steps when a flow run ends: about 1 s per flow run,
    # most of the suite's time. Nothing here reads heartbeat events (the demo turns it off too).
    with (
        prefect_test_harness(server_startup_timeout=240),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"
