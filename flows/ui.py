"""The Prefect UI for this project: a local server, the work pool, the deployments of prefect.yaml
and a worker, started together and stopped together (`reviewlstm ui`, `make ui`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from flows.connect import ROOT, answers, pointer_path, prefect_home
from reviewlstm.errors import InputError

POOL = "reviewlstm-process"
DEFAULT_PORT = 4200


def port_free(host: str, port: int) -> bool:
    """Whether the server could bind the port: with SO_REUSEADDR, as uvicorn binds it, so the
    connections of a server stopped a moment ago (TIME_WAIT) do not count as a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Stack:
    """The processes `reviewlstm ui` starts, each in its own process group, stopped in reverse."""

    def __init__(self, log_dir: Path) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.log_dir = log_dir
        self.pointer: Path | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    def point_at(self, api_url: str, pid: int) -> None:
        from reviewlstm.storage import atomic_file

        self.pointer = pointer_path()
        self.pointer.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.pointer, "w") as f:
            json.dump({"api_url": api_url, "pid": pid}, f)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, grace: float = 20.0) -> None:
        if self.pointer is not None:
            self.pointer.unlink(missing_ok=True)
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait(timeout=10)
            else:  # its children (a flow run of the worker) may outlive it
                _signal_group(proc, signal.SIGTERM)
        self.procs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not answers(url, timeout=2):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
            raise InputError(f"{log}: the Prefect server did not start; expected it to answer at {url}/health ... {tail.strip().splitlines()[-1] if tail.strip() else ''}")
        time.sleep(0.5)


def _run_step(what: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    (log_dir / f"{what}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = next((l for l in reversed((proc.stderr or proc.stdout).strip().splitlines()) if l.strip()), "")
        raise InputError(f"{log_dir / (what + '.log')}: `{' '.join(args[2:])}` failed ({last.strip()[:200]})")


def project_env(api_url: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the processes started here: this project's server, the project root as
    PWD (prefect.yaml's working_dir is resolved from it when deploying)."""
    env = {**(os.environ if base is None else base), "PREFECT_API_URL": api_url, "PREFECT_UI_API_URL": api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PWD": str(ROOT)}
    env.pop("PREFECT_API_KEY", None)
    return env


def create_pool(env: dict[str, str]) -> None:
    """The process work pool; one that already exists is kept as it is."""
    proc = subprocess.run(_prefect("work-pool", "create", POOL, "--type", "process"), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "already exists" not in proc.stdout + proc.stderr:
        raise InputError(f"work pool {POOL}: could not be created ({(proc.stderr or proc.stdout).strip()[-200:]})")


def deploy(env: dict[str, str], log_dir: Path) -> None:
    """Every deployment of prefect.yaml, from the project root."""
    log_dir.mkdir(parents=True, exist_ok=True)
    _run_step("deploy", _prefect("--no-prompt", "deploy", "--all"), env, log_dir)


def start_worker(stack: Stack, env: dict[str, str]) -> subprocess.Popen:
    return stack.start("worker", _prefect("worker", "start", "--pool", POOL, "--type", "process"), env)


def start(host: str = "127.0.0.1", port: int = DEFAULT_PORT, ui: bool = True, log_dir: Path | None = None) -> tuple[Stack, str]:
    """Start server, work pool, deployments and worker; return them and the UI's address."""
    if not port_free(host, port):
        raise InputError(f"{host}:{port}: the port is in use; expected a free port (pass --port)")
    api = f"http://{host}:{port}/api"
    env = project_env(api)
    stack = Stack(log_dir or prefect_home() / "ui-logs")
    try:
        server = stack.start("server", _prefect("server", "start", "--host", host, "--port", str(port),
                                                *([] if ui else ["--no-ui"]), "--analytics-off"), env)
        _wait_healthy(api, server, stack.log_dir / "server.log")
        stack.point_at(api, server.pid)  # every local command finds it (use_project_server)
        create_pool(env)
        deploy(env, stack.log_dir)
        start_worker(stack, env)
    except BaseException:
        stack.stop()
        raise
    return stack, f"http://{host}:{port}"


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """`reviewlstm ui`: start everything, print the address, stop everything on Ctrl-C."""
    print(f"starting the Prefect server on {host}:{port}, work pool {POOL}, deployments and a worker ...", flush=True)
    stack, url = start(host, port)
    stopping = False

    def on_term(signum, frame):  # a service manager's stop: the same as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        print(f"Prefect UI: {url}  (deployments: {url}/deployments; logs: {stack.log_dir})", flush=True)
        print("Ctrl-C stops the worker and the server.", flush=True)
        while True:
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    print(f"the {name} stopped (exit {proc.returncode}); see {stack.log_dir / (name + '.log')}", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        stopping = True
        print("\nstopping the worker and the server ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()
        if stopping:
            print("stopped.", flush=True)
