"""The temporary Prefect server of a `reviewlstm run --task-runner dask` without PREFECT_API_URL.

Prefect starts such a server itself, but to do so it imports prefect.server's whole API (FastAPI
routes, SQLAlchemy models) into the process that runs the flow, where it stays for
the whole run beside the trainings. Here the same uvicorn command starts in a child process and
this process's settings point at it, so the run's own process only ever holds a client
(bench/RESULTS.md, "Memory").
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from flows.connect import answers
from reviewlstm.errors import InputError
from reviewlstm.storage import temp_dir
from reviewlstm.child import parent_death_signal


def free_port() -> int:
    """A loopback port free now; another process may bind it first, so callers retry."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Prefect's own command for its temporary server (prefect.server.api.server.SubprocessASGIServer)."""
    import prefect

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
            # its own session: a Ctrl-C at the terminal reaches the command, which stops the server
            # after its last API calls; and it goes when the command does, even SIGKILLed
            start_new_session=True, preexec_fn=lambda: parent_death_signal(signal.SIGTERM))


def start_temporary_server(timeout: float = 120.0) -> str | None:
    """Start a server for this process and point Prefect at it; returns its API URL, or None
    (Prefect then starts its own) where this Prefect cannot be pointed at a server after its
    import. The server stops when the process exits, after Prefect's services have sent their
    last logs and events (they drain before atexit hooks run), as Prefect's own one does."""
    try:
        from prefect.context import refresh_global_settings_context
    except ImportError:  # an older Prefect 3
        return None
    from prefect.settings import get_current_settings

    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
           "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    log = temp_dir("server") / "server.log"
    deadline = time.monotonic() + timeout
    for _ in range(3):  # a port taken between the check and uvicorn's bind: try another
        port = free_port()
        url = f"http://127.0.0.1:{port}/api"
        proc = _start(port, env, log)
        atexit.register(_stop, proc, log)
        while proc.poll() is None and not answers(url, timeout=1) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            break
    if proc.poll() is not None or not answers(url, timeout=1):
        last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise InputError(f"temporary Prefect server: did not answer at {url}/health within {timeout:.0f} s; "
                         f"expected it to start{': ' + last[0].strip()[:200] if last else ''}")
    os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()  # every thread of the run sees it, the event workers' too
    return url


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, so the server closes its database cleanly; SIGKILL after timeout seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop(proc: subprocess.Popen, log: Path) -> None:
    stop(proc)
    shutil.rmtree(log.parent, ignore_errors=True)
