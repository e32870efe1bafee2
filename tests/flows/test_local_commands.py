"""Local commands without a server start: a fresh plan answers from the output folders; a running
project server (`reviewlstm ui`'s pointer) is found and used; a stale pointer is ignored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT
from flows import connect, ui
from flows.pipeline import pipeline
from flows.server import free_port
from reviewlstm.config import PipelineConfig

pytestmark = pytest.mark.slow


def cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def encoded(prefect_server, sample_csv, tmp_path):
    """The sample through encode (a real flow run on the test server); the same settings as a file."""
    data = tmp_path / "data"
    pipeline(raw=str(sample_csv), data_dir=str(data), config=PipelineConfig(), until="encode")
    cfg = tmp_path / "config.json"
    cfg.write_text(PipelineConfig().model_dump_json())
    return ["--raw", str(sample_csv), "--data-dir", str(data), "--config", str(cfg), "--until", "encode"]


def test_a_fresh_plan_prints_its_table_without_any_server(encoded, tmp_path):
    # a configured API that nothing answers: had the command needed a server, it would stop there
    dead = f"http://127.0.0.1:{free_port()}/api"
    proc = cli(["run", *encoded, "--json"], PREFECT_API_URL=dead, PREFECT_HOME=str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert [s["status"] for s in summary["stages"]] == ["cached"] * 5
    assert summary["figures"]["encode"]["valid_rows"] > 0
    # with a stage to run, the same command does need the server, and says so in one line
    proc = cli(["run", *encoded[:-1], "tokenize", "--set", "tokenize.drop_whitespace=true"],
               PREFECT_API_URL=dead, PREFECT_HOME=str(tmp_path / "home"))
    assert proc.returncode == 2 and "does not answer" in proc.stderr


def test_a_preprocessing_stage_with_no_server_to_report_to_runs_without_one(encoded, tmp_path):
    """No PREFECT_API_URL, no `reviewlstm ui`: nobody would see a temporary server's runs, so
    `stage clean` calls the task's function itself; its inputs come from their folders."""
    code = ("import os, sys\nfrom flows.cli import main\n"
            f"rc = main(['stage', 'clean', *{encoded[:-2]!r}, '--json'])\n"
            "print('rc', rc, 'api', os.environ.get('PREFECT_API_URL'), file=sys.stderr)\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, "PREFECT_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=300)
    assert "rc 0 api None" in proc.stderr, proc.stderr[-2000:]  # no temporary server was started
    statuses = {s["stage"]: s["status"] for s in json.loads(proc.stdout)["stages"]}
    assert statuses == {"ingest": "cached", "clean": "ran"}


def test_a_whole_run_with_no_server_trains_evaluates_and_promotes_without_one(prefect_server, sample_csv, tmp_path):
    """Training, evaluation and promotion as plain calls too: the same outputs as a flow run's,
    which a flow run on a server then finds cached; the champion names no flow run."""
    from test_model_kinds import config

    data, cfg = tmp_path / "data", tmp_path / "config.json"
    cfg.write_text(config().model_dump_json())
    code = ("import os, sys\nfrom flows.cli import main\n"
            f"rc = main(['run', '--raw', {str(sample_csv)!r}, '--data-dir', {str(data)!r}, '--config', {str(cfg)!r}, '--json'])\n"
            "print('rc', rc, 'api', os.environ.get('PREFECT_API_URL'), 'prefect.server.api.server' in sys.modules,"
            " file=sys.stderr)\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, "PREFECT_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=300)
    assert "rc 0 api None False" in proc.stderr, proc.stderr[-2000:]  # no server, not even in process
    plain = json.loads(proc.stdout)
    assert {s["status"] for s in plain["stages"]} == {"ran"} and {s["stage"] for s in plain["stages"]} >= {
        "train[tiny]", "train[baseline]", "train[ens]", "evaluate"}
    assert plain["promotion"]["promoted"] and set(plain["metrics"]) == {"tiny", "baseline", "ens"}
    registry = json.loads((data / "registry.json").read_text())
    assert [m["flow_run"] for m in registry["models"]] == [None]
    flow = pipeline(raw=str(sample_csv), data_dir=str(data), config=config())
    assert {s["status"] for s in flow["stages"]} == {"cached"}
    assert [s["output"] for s in flow["stages"]] == [s["output"] for s in plain["stages"]]
    assert flow["metrics"] == plain["metrics"] and flow["promotion"]["reason"] == "already the champion"


def flow_runs(api_url: str) -> list[dict]:
    request = urllib.request.Request(f"{api_url}/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def test_commands_find_the_project_server_and_ignore_a_stale_pointer(encoded, prefect_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    pointer = home / "reviewlstm-server.json"
    url = prefect_server["PREFECT_API_URL"]
    # `reviewlstm ui` writes this; the test's own process stands in for the server's pid
    pointer.write_text(json.dumps({"api_url": url, "pid": os.getpid()}))
    before = {r["id"] for r in flow_runs(url)}
    proc = cli(["stage", "clean", *encoded[:-2]], PREFECT_HOME=str(home))
    assert proc.returncode == 0, proc.stderr
    assert pointer.is_file()
    new = [r for r in flow_runs(url) if r["id"] not in before]
    assert [r["state_type"] for r in new] == ["COMPLETED"], new  # the run is on the project's server

    # the server it names is gone: the pointer is removed and the stage runs without one
    pointer.write_text(json.dumps({"api_url": f"http://127.0.0.1:{free_port()}/api", "pid": os.getpid()}))
    before = {r["id"] for r in flow_runs(url)}
    proc = cli(["stage", "clean", *encoded[:-2]], PREFECT_HOME=str(home))
    assert proc.returncode == 0, proc.stderr
    assert not pointer.exists()
    assert {r["id"] for r in flow_runs(url)} == before


def test_ui_start_points_at_its_server_and_stop_removes_the_pointer(tmp_path, monkeypatch):
    for step in ("create_pool", "deploy"):
        monkeypatch.setattr(ui, step, lambda *args, **kwargs: None)
    monkeypatch.setattr(ui, "start_worker", lambda *args, **kwargs: None)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    stack, url = ui.start(port=free_port(), ui=False, log_dir=tmp_path / "logs")
    try:
        assert connect.project_server() == f"{url}/api"
        assert connect.use_project_server() == f"{url}/api" and os.environ["PREFECT_API_URL"] == f"{url}/api"
    finally:
        stack.stop()
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert not connect.pointer_path().exists() and connect.project_server() is None


def test_a_trained_and_promoted_plan_answers_without_a_server(prefect_server, sample_csv, tmp_path):
    """Promotion too: keeping the champion needs no run when the registry shows it (registry.kept)."""
    from test_model_kinds import config

    data = tmp_path / "data"
    first = pipeline(raw=str(sample_csv), data_dir=str(data), config=config())
    assert first["promotion"]["promoted"]
    # a reader that leaves early (`reviewlstm predict ... | head -1`): the command ends quietly, as cat would
    texts = [f"Love this dress, number {i}" for i in range(5000)]  # more lines than a pipe holds
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    reader = subprocess.Popen([sys.executable, "-m", "flows.cli", "predict", *texts, "--data-dir", str(data)], cwd=ROOT,
                              env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = reader.stdout.readline()
    reader.stdout.close()
    assert line.decode().rstrip("\n").split("  ")[1] == texts[0] and reader.wait(timeout=120) == 128 + signal.SIGPIPE
    assert reader.stderr.read() == b""
    cfg = tmp_path / "config.json"
    cfg.write_text(config().model_dump_json())
    dead = f"http://127.0.0.1:{free_port()}/api"
    proc = cli(["run", "--raw", str(sample_csv), "--data-dir", str(data), "--config", str(cfg), "--json"],
               PREFECT_API_URL=dead, PREFECT_HOME=str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {s["status"] for s in summary["stages"]} == {"cached"}
    assert summary["metrics"] == first["metrics"]
    promotion = summary["promotion"]
    assert (promotion["promoted"], promotion["reason"], promotion["champion"]) == (False, "already the champion",
                                                                                 first["promotion"]["champion"])
    # a champion measured on other reviews must be scored again: that is a run, which needs the server
    registry = json.loads((data / "registry.json").read_text())
    next(m for m in registry["models"] if m["id"] == registry["champion"])["validation"]["digest"] = "other reviews"
    (data / "registry.json").write_text(json.dumps(registry))
    proc = cli(["run", "--raw", str(sample_csv), "--data-dir", str(data), "--config", str(cfg)],
               PREFECT_API_URL=dead, PREFECT_HOME=str(tmp_path / "home"))
    assert proc.returncode == 2 and "does not answer" in proc.stderr
