"""What `reviewlstm status` says about a configured server: its deployments and their next runs."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from flows.connect import answers
from reviewlstm.errors import InputError


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
