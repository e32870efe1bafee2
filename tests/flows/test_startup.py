"""The command starts without the heavy libraries: torch and spaCy load only in the stages
that need them, so `reviewlstm --help`, argument errors and cached reruns stay fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT


def test_importing_the_cli_loads_neither_torch_nor_spacy():
    code = "import flows.cli, sys; print('torch' in sys.modules, 'spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_help_imports_neither_torch_nor_spacy():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "flows.cli", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert "usage: reviewlstm" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & {"torch", "spacy", "thinc"}, sorted(imported & {"torch", "spacy", "thinc"})


def test_training_leaves_torch_to_the_child(prefect_server, sample_csv, tmp_path):
    """The orchestrating process trains through a child and never loads torch itself: torch
    would add about 220 MB to it for the whole run (bench/RESULTS.md, "Memory")."""
    data = tmp_path / "data"
    code = ("import sys\nfrom flows.cli import main\n"
            f"rc = main(['run', '--raw', {str(sample_csv)!r}, '--data-dir', {str(data)!r}, '--profile', 'quick',"
            " '--until', 'train', '--variant', 'fixed', '--json'])\n"
            "print('torch-loaded:', 'torch' in sys.modules, rc, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=prefect_server, capture_output=True,
                          text=True, timeout=300)
    assert "torch-loaded: False 0" in proc.stderr, proc.stderr[-3000:]
    assert list(data.glob("08_models/*/model.pt"))  # the child saved the weights where the stage publishes


def test_a_dask_run_without_a_server_starts_one_without_importing_prefects_server(sample_csv, tmp_path):
    """Dask's task runner needs Prefect: without PREFECT_API_URL the command starts the temporary
    server as a child process (flows/server.py), so its own process never holds prefect.server's
    API; the server answers during the run and is gone when the command exits."""
    pytest.importorskip("prefect_dask")
    from flows.connect import answers

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"variants": {"tiny": {"embedding_dim": 8, "hidden_dim": 4, "batch_size": 16,
                                                        "micro_batch": None, "rounds": [{"epochs": 1, "lr": 0.01}]}}}))
    code = ("import os, sys\nfrom flows.cli import main\n"
            f"rc = main(['run', '--raw', {str(sample_csv)!r}, '--data-dir', {str(tmp_path / 'data')!r},"
            f" '--config', {str(config)!r}, '--until', 'train', '--task-runner', 'dask', '--json'])\n"
            "print('server-api:', os.environ.get('PREFECT_API_URL'), 'prefect.server.api.server' in sys.modules,"
            " rc, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    line = next((l for l in proc.stderr.splitlines() if l.startswith("server-api:")), None)
    assert line is not None, proc.stderr[-3000:]
    _, url, imported, rc = line.split()
    assert url.startswith("http://127.0.0.1:") and imported == "False" and rc == "0"
    assert json.loads(proc.stdout)["stages"][0]["stage"] == "ingest"
    assert not answers(url, timeout=1)  # stopped at exit
    assert "Traceback" not in proc.stderr and "Failed" not in proc.stderr, proc.stderr[-3000:]


def test_status_and_a_run_with_nothing_to_do_import_no_prefect(prefect_server, sample_csv, tmp_path):
    """They read the output folders (flows/plan.py, tasks/keys.py): about a second, not a server start."""
    from flows.pipeline import pipeline
    from reviewlstm.config import PipelineConfig

    data = tmp_path / "data"
    pipeline(raw=str(sample_csv), data_dir=str(data), config=PipelineConfig(), until="encode")
    config = tmp_path / "config.json"
    config.write_text(PipelineConfig().model_dump_json())
    args = f"'--raw', {str(sample_csv)!r}, '--data-dir', {str(data)!r}, '--config', {str(config)!r}"
    code = ("import sys\nfrom flows.cli import main\n"
            f"a = main(['status', {args}])\nb = main(['run', {args}, '--until', 'encode'])\n"
            "print('prefect-loaded:', 'prefect' in sys.modules, a, b, file=sys.stderr)\n")
    env = {k: v for k, v in prefect_server.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "prefect-loaded: False 0 0" in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.count("cached") == 5  # run's table: every stage cached


def test_the_ui_keeps_its_logs_in_the_prefect_home_the_user_chose(tmp_path, monkeypatch):
    from flows import ui

    made = []

    class Stopped(Exception):
        pass

    class Stack(ui.Stack):
        def start(self, *args, **kwargs):
            made.append(self.log_dir)
            raise Stopped  # as far as the logs' place: no server needed

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(ui, "Stack", Stack)
    monkeypatch.setattr(ui, "port_free", lambda host, port: True)
    try:
        ui.start(port=1)
    except Stopped:
        pass
    assert made == [tmp_path / "home" / "ui-logs"]


@pytest.mark.parametrize("args,status", [(["status"], 0), (["status", "--config", "missing.json"], 2)])
def test_the_command_exits_as_sys_exit_would_without_the_teardown(tmp_path, args, status):
    """flows.cli.entry (the console script) skips the interpreter's module teardown: the same exit
    status, output and atexit handlers as sys.exit(main())."""
    setup = "import atexit, sys\nfrom flows import cli\natexit.register(lambda: print('atexit ran'))\n"
    argv = [*args, "--data-dir", str(tmp_path / "data")]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, "PREFECT_HOME": str(tmp_path / "home")}
    fast, plain = (subprocess.run([sys.executable, "-c", setup + call, *argv], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=120) for call in ("cli.entry(sys.argv[1:])", "sys.exit(cli.main(sys.argv[1:]))"))
    assert fast.returncode == plain.returncode == status
    assert fast.stdout == plain.stdout and fast.stdout.endswith("atexit ran\n")
    assert fast.stderr == plain.stderr
