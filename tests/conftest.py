"""Shared fixtures: a real Prefect server for the session and a small review file; the helpers
tests import live in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.server import free_port, stop
from helpers import SAMPLE, write_reviews

@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> dict[str, str]:
    """`prefect server start` on a free loopback port with its own home; yields the env to use it.

    The test process itself is pointed at it too, so in-process flow runs are real API runs.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--no-ui", "--analytics-off"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    client_env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_HOME: str(home)}):
        yield {**env, **client_env}
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send the last run logs while the server still listens
    stop(server, timeout=20)
    log.close()


@pytest.fixture
def sample_csv(tmp_path) -> Path:
    return write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)


def pytest_collection_modifyitems(items):
    """`server`: the tests that start a Prefect server or the whole reliability battery; `make
    test-fast` leaves them out, `make test` (CI) runs everything."""
    for item in items:
        path = str(item.path)
        if "prefect_server" in item.fixturenames or "/reliability/" in path:
            item.add_marker(pytest.mark.server)
