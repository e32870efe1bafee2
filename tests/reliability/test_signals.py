"""Ctrl-C and SIGTERM during training stop the command within seconds: one line, exit 130/143, no
child left, the flow run cancelled; a SIGKILLed command leaves no child (its temporary server
included) behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow

ENDLESS = {"variants": {"slow": {"kind": "lstm", "embedding_dim": 8, "hidden_dim": 4, "batch_size": 16,
                                 "micro_batch": None, "rounds": [{"epochs": 100000, "lr": 0.01}]}}}


def session_pids(sid: int) -> list[int]:
    """Processes of a session (the command started with start_new_session: its children stay in it
    unless they start their own; the temporary server's is found by its parent instead)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def start_training(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, list[int]]:
    from helpers import SAMPLE, write_reviews

    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(ENDLESS))
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--raw", str(raw), "--data-dir",
                             str(tmp_path / "data"), "--config", str(cfg), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while not any("reviewlstm.child" in cmdline(p) for p in descendants(proc.pid)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    return proc, descendants(proc.pid)


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**base, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_stops_everything_within_seconds(tmp_path, sig, code):
    proc, children = start_training(tmp_path, env_for(tmp_path))
    started = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does: the whole foreground group
    else:
        proc.send_signal(sig)  # what a worker or service manager does: the process
    out, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - started
    assert proc.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[-1].startswith(f"error: stopped by {signal.Signals(sig).name}"), err
    assert seconds <= 10, seconds
    deadline = time.monotonic() + 5
    while [p for p in children if Path(f"/proc/{p}").exists() and cmdline(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [cmdline(p) for p in children if Path(f"/proc/{p}").exists() and cmdline(p)]


def flow_runs(url: str) -> dict[str, dict]:
    request = urllib.request.Request(f"{url}/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return {run["id"]: run for run in json.loads(r.read())}


def test_a_stopped_run_is_cancelled_on_the_server(tmp_path, prefect_server):
    url = prefect_server["PREFECT_API_URL"]
    before = flow_runs(url)
    proc, _ = start_training(tmp_path, env_for(tmp_path, PREFECT_API_URL=url))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    # the command's run (not a deployment's scheduled ones, which the server adds meanwhile)
    (run,) = [r for i, r in flow_runs(url).items() if i not in before and r["deployment_id"] is None]
    assert run["state_type"] == "CANCELLED", run["state"]


@pytest.mark.parametrize("runner", ["threads", "dask"])
def test_a_killed_command_leaves_nothing_behind(tmp_path, runner):
    """Threads: no server, the training child dies with the command. Dask: the temporary server
    (Dask's runner needs Prefect) and Dask's workers die with it too."""
    if runner == "dask":
        pytest.importorskip("prefect_dask")
    proc, children = start_training(tmp_path, env_for(tmp_path), "--task-runner", runner)
    assert any("uvicorn" in cmdline(p) for p in children) == (runner == "dask")
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while [p for p in children if cmdline(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [cmdline(p) for p in children if cmdline(p)]
    left = sorted(Path(tempfile.gettempdir()).glob(f"reviewlstm-*-{proc.pid}-*"))
    # the command's own: its training child's files, or the server's (Dask's workers name their own)
    assert {p.name.split("-")[1] for p in left} == ({"server"} if runner == "dask" else {"train"})
    # the next command cleans up after it
    again = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--until", "ingest", "--raw", str(tmp_path / "reviews.csv"),
                            "--data-dir", str(tmp_path / "data")], cwd=ROOT, env=env_for(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert not [p for p in left if p.exists()]
