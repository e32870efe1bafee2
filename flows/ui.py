"""The Prefect UI for this project: a local server, the work pool, the deployments of prefect.yaml
and a worker, started together and stopped together (`reviewlstm ui`, `make ui`).

Also what `reviewlstm status` says about a configured server: its deployments and their next
scheduled runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reviewlstm.errors import InputError
from reviewlstm.storage import alive

ROOT = Path(__file__).resolve().parents[1]
POOL = "reviewlstm-process"
DEFAULT_PORT = 4200


# --- reviewlstm status: the server's deployments -------------------------------------------


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment, a Prefect profile or prefect.toml; None when unset."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url).rstrip("/") if url else None


def pointer_path() -> Path:
    """Where `reviewlstm ui` says which server it runs: in Prefect's home (prefect.toml's is the
    project's .prefect), read without importing Prefect."""
    return prefect_home() / "reviewlstm-server.json"


def prefect_home() -> Path:
    """PREFECT_HOME as the user set it, else the project's .prefect (prefect.toml's)."""
    return Path(os.environ.get("PREFECT_HOME") or ROOT / ".prefect").expanduser()


def project_server() -> str | None:
    """The API URL of this project's running `reviewlstm ui` server; a pointer left by one that
    died (its process gone, or not answering) is removed and ignored."""
    path = pointer_path()
    try:
        pointer = json.loads(path.read_text())
        url, pid = str(pointer["api_url"]), int(pointer["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if alive(pid) and answers(url, timeout=1):
        return url
    path.unlink(missing_ok=True)
    return None


def use_project_server() -> str | None:
    """Point this process at the project's running server when the user set no PREFECT_API_URL."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    url = project_server()
    if url:
        os.environ["PREFECT_API_URL"] = url
        if "prefect.settings" in sys.modules:
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()
    return url


def answers(api_url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def _next_from_schedule(schedule: Any) -> datetime | None:
    """The next date of a cron/interval/rrule schedule, computed as the server would."""
    import asyncio

    from prefect.server.schemas import schedules as server_schedules

    kind = type(schedule).__name__
    try:
        server_schedule = getattr(server_schedules, kind).model_validate(schedule.model_dump())
        dates = asyncio.run(server_schedule.get_dates(n=1, start=datetime.now(timezone.utc)))
    except Exception:  # an unknown schedule type: say nothing rather than something wrong
        return None
    return dates[0] if dates else None


def deployments_overview(api_url: str) -> list[dict[str, Any]]:
    """Every deployment on the server with its schedules and its next scheduled run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    rows = []
    with get_client(sync_client=True) as client:
        flows = {}
        for dep in client.read_deployments():
            if dep.flow_id not in flows:
                flows[dep.flow_id] = client.read_flow(dep.flow_id).name
            scheduled = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=1)
            active = [s for s in dep.schedules if s.active] if not dep.paused else []
            if scheduled and scheduled[0].expected_start_time:
                nxt = scheduled[0].expected_start_time
            else:
                dates = [d for d in (_next_from_schedule(s.schedule) for s in active) if d is not None]
                nxt = min(dates) if dates else None
            rows.append({
                "deployment": f"{flows[dep.flow_id]}/{dep.name}",
                "work_pool": dep.work_pool_name,
                "schedule": ", ".join(_describe(s.schedule) for s in active) or ("paused" if dep.paused else ""),
                "next_run": nxt.astimezone(timezone.utc).isoformat(timespec="minutes") if nxt else None,
            })
    return sorted(rows, key=lambda r: r["deployment"])


def _describe(schedule: Any) -> str:
    if getattr(schedule, "cron", None):
        return f"cron {schedule.cron} {schedule.timezone or 'UTC'}"
    if getattr(schedule, "interval", None):
        return f"every {schedule.interval}"
    if getattr(schedule, "rrule", None):
        return f"rrule {schedule.rrule}"
    return type(schedule).__name__


def server_overview() -> dict[str, Any] | None:
    """None when no server is set; the server and its deployments when one answers.

    The server of PREFECT_API_URL in the environment (or of use_project_server): a URL kept only in
    a Prefect profile would cost `status` Prefect's import (about a second). A server that does
    not answer is an InputError (one line, exit 2).
    """
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/") or None
    if not url:
        return None
    if not answers(url):
        raise InputError(f"PREFECT_API_URL={url}: the Prefect server does not answer; expected a running server "
                         f"(start one with `reviewlstm ui`, or unset PREFECT_API_URL)")
    return {"server": url, "deployments": deployments_overview(url)}


# --- reviewlstm ui: server, work pool, deployments, worker ---------------------------------


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
