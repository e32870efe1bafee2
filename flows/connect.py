"""Which Prefect server a command talks to: PREFECT_API_URL, else the project's running
`reviewlstm ui` (the pointer it leaves in Prefect's home), else none; and whether one answers."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from reviewlstm.storage import alive

ROOT = Path(__file__).resolve().parents[1]


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
