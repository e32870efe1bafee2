"""A screenshot of the Prefect UI: a run of the retraining deployment and its metrics artifact.

Starts what `reviewlstm ui` starts (server with UI, work pool, deployments, worker) with a
temporary Prefect home, runs the `weekly-retraining` deployment through the API on the real
reviews with the study's variants for a few epochs (a temporary data directory), then takes two
headless Chromium screenshots (the flow run page with its task graph and artifacts, the metrics
artifact) and stacks them into one PNG.

    .venv/bin/python docs/screenshot.py [--raw FILE] [--epochs 2] [--out docs/ui-retraining-run.png]
    .venv/bin/python docs/screenshot.py --form [--out docs/ui-run-form.png]

--form: the deployment's custom-run form (its parameters and their descriptions), and the
Parameters tab of a run submitted with one setting in `overrides` (up to prune: seconds).

Needs Debian's `chromium` (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=20000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(url: str, out: Path, size: tuple[int, int], profile: Path) -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                    f"--window-size={size[0]},{size[1]}", url], check=True, capture_output=True, timeout=180)
    return out


def stack_images(parts: list[tuple[Path, int]], out: Path) -> None:
    """Each image cropped to its first `height` pixels, one under the other."""
    from PIL import Image

    images = [Image.open(p).crop((0, 0, Image.open(p).width, h)) for p, h in parts]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    sheet.save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default=str(ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--form", action="store_true", help="the run form and a run with an override")
    args = ap.parse_args()
    args.out = args.out or str(ROOT / "docs" / ("ui-run-form.png" if args.form else "ui-retraining-run.png"))

    work = Path(tempfile.mkdtemp(prefix="reviewlstm-shot-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")  # a server of its own, not the project's
    from flows import ui
    from reviewlstm.config import ModelConfig, Round, profile

    cfg = profile("quick")
    cfg.profile = f"article variants, {args.epochs} epochs"
    for variant in cfg.variants.values():
        if isinstance(variant, ModelConfig):  # the baseline has no epochs
            variant.rounds = [Round(epochs=args.epochs, lr=variant.rounds[0].lr)]
    cfg.train.threads = 1  # a light load on a shared machine

    port = free_port()
    stack, url = ui.start(port=port, ui=True, log_dir=work / "logs")
    try:
        os.environ["PREFECT_API_URL"] = f"{url}/api"
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
        from prefect.deployments import run_deployment

        if args.form:
            form(url, args, work)
            return
        run = run_deployment("reviewlstm-pipeline/weekly-retraining", timeout=900,
                             parameters={"config": cfg.model_dump(mode="json"), "raw": args.raw,
                                         "data_dir": str(work / "data")})
        print(f"flow run {run.name}: {run.state.name}", flush=True)
        if not run.state.is_completed():
            sys.exit(f"the run did not complete: {run.state.message}; logs in {work / 'logs'}")
        with get_client(sync_client=True) as client:
            (metrics,) = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]), key=ArtifactFilterKey(any_=["metrics"])))
        run_png = shoot(f"{url}/runs/flow-run/{run.id}", work / "run.png", (1400, 1000), work / "chrome")
        art_png = shoot(f"{url}/artifacts/artifact/{metrics.id}", work / "metrics.png", (1400, 1000), work / "chrome")
        stack_images([(run_png, 500), (art_png, 440)], Path(args.out))
        print(f"wrote {args.out}", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def form(url: str, args: argparse.Namespace, work: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("reviewlstm-pipeline/weekly-retraining")
    run = run_deployment("reviewlstm-pipeline/weekly-retraining", timeout=300, parameters={
        "profile": "quick", "overrides": {"prune.min_count": 3}, "until": "prune", "raw": args.raw,
        "data_dir": str(work / "data")})
    print(f"flow run {run.name}: {run.state.name}", flush=True)
    if not run.state.is_completed():
        sys.exit(f"the run did not complete: {run.state.message}; logs in {work / 'logs'}")
    form_png = shoot(f"{url}/deployments/deployment/{deployment.id}/run", work / "form.png", (1400, 1900), work / "chrome")
    params_png = shoot(f"{url}/runs/flow-run/{run.id}?tab=Parameters", work / "params.png", (1400, 1400), work / "chrome")
    stack_images([(form_png, 1700), (params_png, 880)], Path(args.out))
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
