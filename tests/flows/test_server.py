"""Deployments against a real server: prefect.yaml deployed, a process worker, the retraining run
through the API, its artifacts, the registry it wrote, a prediction from the new champion."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from helpers import ROOT, SAMPLE, write_reviews
from flows import ui
from reviewlstm.config import ModelConfig, PipelineConfig, Round

pytestmark = pytest.mark.slow


def tiny_config() -> dict:
    small = dict(embedding_dim=8, hidden_dim=4, batch_size=16, rounds=[Round(epochs=2, lr=0.05)])
    cfg = PipelineConfig(profile="tiny", variants={"a": ModelConfig(**small), "r": ModelConfig(head="regress", **small)})
    cfg.train.threads = 1
    return cfg.model_dump(mode="json")


@pytest.fixture(scope="module")
def deployed(prefect_server, tmp_path_factory):
    """prefect.yaml deployed from the project root to the test server, and a worker polling its pool."""
    logs = tmp_path_factory.mktemp("ui-logs")
    env = ui.project_env(prefect_server["PREFECT_API_URL"], base=prefect_server)
    ui.create_pool(env)
    ui.deploy(env, logs)
    stack = ui.Stack(logs)
    ui.start_worker(stack, env)
    yield env
    stack.stop()


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_deployment_is_on_the_server_with_the_weekly_schedule(deployed):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deps = {d.name: d for d in client.read_deployments()}
    assert {"weekly-retraining", "preprocess", "train", "evaluate", "predict"} <= set(deps)
    weekly = deps["weekly-retraining"]
    assert [s.schedule.cron for s in weekly.schedules] == ["0 3 * * 1"]
    assert weekly.work_pool_name == ui.POOL
    assert weekly.job_variables["working_dir"] == str(ROOT)  # resolved when deploying, not committed
    assert {"config", "profile", "until", "variants", "promote"} <= set(weekly.parameter_openapi_schema["properties"])
    assert deps["preprocess"].parameters["until"] == "encode"
    assert deps["train"].parameters["variants"] == ["bilstm"]
    assert deps["evaluate"].parameters["promote"] is False


def test_status_lists_deployments_and_next_run(deployed, sample_csv, tmp_path):
    proc = cli(["status", "--raw", str(sample_csv), "--data-dir", str(tmp_path), "--json"], deployed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    rows = {d["deployment"]: d for d in out["deployments"]}
    weekly = rows["reviewlstm-pipeline/weekly-retraining"]
    assert weekly["schedule"] == "cron 0 3 * * 1 UTC" and weekly["next_run"].endswith("T03:00+00:00")
    assert rows["reviewlstm-predict/predict"]["next_run"] is None

    dead = {**deployed, "PREFECT_API_URL": f"http://127.0.0.1:{ui_free_port()}/api"}
    proc = cli(["status", "--raw", str(sample_csv), "--data-dir", str(tmp_path)], dead)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "does not answer" in lines[0], proc.stderr[-2000:]


def ui_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retraining_through_the_api_promotes_a_champion_that_predicts(deployed, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment

    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    data_dir = tmp_path / "data"
    started = time.monotonic()
    run = run_deployment("reviewlstm-pipeline/weekly-retraining", timeout=240,
                         parameters={"config": tiny_config(), "raw": str(raw), "data_dir": str(data_dir)})
    assert run.state.is_completed(), (run.state, run.state.message)
    assert time.monotonic() - started < 240

    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
    assert {"metrics", "report", "promotion"} <= set(artifacts)
    table = artifacts["metrics"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert [r["variant"] for r in rows] == ["a", "r"] and all(0 <= r["accuracy"] <= 1 for r in rows)

    registry = json.loads((data_dir / "registry.json").read_text())
    (champion,) = registry["models"]
    assert registry["champion"] == champion["id"]
    assert champion["flow_run"]["id"] == str(run.id) and champion["flow_run"]["name"] == run.name
    best = min(rows, key=lambda r: r["rmse_expected"])["variant"]
    assert champion["variant"] == best and champion["select_by"] == "rmse_expected"
    assert (data_dir / champion["bundle"] / "model.pt").is_file()

    proc = cli(["predict", "Love this dress, it fits perfectly", "--data-dir", str(data_dir), "--json"], deployed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["model"] == f"champion {champion['id']}" and out["predictions"][0]["rating"] in {1, 2, 3, 4, 5}

    # the latest model of one variant, from the current settings, and an unknown variant
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config()))
    common = ["--config", str(config), "--raw", str(raw), "--data-dir", str(data_dir)]
    proc = cli(["predict", "Love this dress", "--model", "r", "--json", *common], deployed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["model"] == "variant r (current settings)"
    proc = cli(["predict", "Love this dress", "--model", "lstm9", *common], deployed)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --model 'lstm9': no such variant; valid: a, r"

    # the predict deployment answers from the same champion
    pred = run_deployment("reviewlstm-predict/predict", timeout=180,
                          parameters={"texts": ["Love this dress", "Cheap fabric"], "data_dir": str(data_dir)})
    assert pred.state.is_completed(), (pred.state, pred.state.message)
    with get_client(sync_client=True) as client:
        (shown,) = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[pred.id])))
    data = json.loads(shown.data) if isinstance(shown.data, str) else shown.data
    assert [r["text"] for r in data] == ["Love this dress", "Cheap fabric"]
    assert all(r["rating"] in {1, 2, 3, 4, 5} for r in data)
    assert json.loads((data_dir / "registry.json").read_text()) == registry  # predicting changes no registry


def epoch_logs(flow_run_id, want: int, wait: float = 60.0) -> list[str]:
    """The run's epoch lines. Logs reach the server in batches, possibly after the run is marked
    completed, so wait for them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    query = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            epochs = [log.message for log in client.read_logs(log_filter=query) if log.message.startswith("fixed: epoch ")]
            if len(epochs) >= want or time.monotonic() > deadline:
                return epochs
            time.sleep(1)


def test_an_override_through_the_api_trains_the_profiles_model_with_that_one_change(deployed, tmp_path):
    """What the run form sends: a profile, and one setting in `overrides` on top of it."""
    from prefect.deployments import run_deployment

    from reviewlstm.config import profile

    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    run = run_deployment("reviewlstm-pipeline/train", timeout=240, parameters={
        "profile": "quick", "overrides": {"variants.fixed.hidden_dim": 7, "train.threads": 1},
        "variants": ["fixed"], "raw": str(raw), "data_dir": str(tmp_path / "data")})
    assert run.state.is_completed(), (run.state, run.state.message)
    (model,) = [json.loads(p.read_text()) for p in (tmp_path / "data").glob("08_models/*/model.json")]
    want = profile("quick").variants["fixed"].model_dump(mode="json") | {"hidden_dim": 7}
    assert model["config"] == want
    # the run's logs hold one line per epoch
    epochs = epoch_logs(run.id, want=3)
    assert [m.split(",")[0] for m in epochs] == ["fixed: epoch 1/3", "fixed: epoch 2/3", "fixed: epoch 3/3"], epochs
    assert all("train loss" in m and "accuracy" in m and m.endswith(" s") for m in epochs)
    bad = run_deployment("reviewlstm-pipeline/train", timeout=120, parameters={
        "profile": "quick", "overrides": {"variants.fixed.hiden_dim": 7}, "raw": str(raw), "data_dir": str(tmp_path / "bad")})
    assert bad.state.is_failed() and "no setting 'variants.fixed.hiden_dim'" in bad.state.message
    assert not (tmp_path / "bad").exists()
