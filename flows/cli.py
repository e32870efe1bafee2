"""The `reviewlstm` command: run the pipeline or one stage, or show what is fresh.

Prefect, torch and spaCy are imported only inside the commands that need them, so `--help`
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from reviewlstm.errors import InputError, os_error_code
from reviewlstm.layers import STAGES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", help="reviews CSV/TSV/Parquet (default: $REVIEWLSTM_RAW, data/01_raw/, ../shared/data/)")
    p.add_argument("--data-dir", default="data", help="where stage outputs live (default: data)")
    p.add_argument("--profile", default=None, help="named settings: best (the default), article (the study), quick (a smoke run)")
    p.add_argument("--config", help="a JSON file with a full PipelineConfig (overrides --profile)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. prune.min_count=3 or variants.fixed.hidden_dim=64")
    p.add_argument("--variant", action="append", default=[], metavar="NAME",
                   help="only these model variants (repeatable; default: all of the profile's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("-v", "--verbose", action="store_true", help="also print Prefect's run logs")


def _runner(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task-runner", choices=["threads", "dask"], default="threads",
                   help="where the variants train: threads of this process, each training in a child "
                        "process (default), or a Dask cluster (needs the `dask` extra)")
    p.add_argument("--dask-address", metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786); implies --task-runner dask. Without it, "
                        "dask starts a local cluster of one single-threaded worker per core")


def task_runner(kind: str, address: str | None) -> Any:
    """The flow's task runner for the train tasks; None keeps the flow's own (threads)."""
    if kind == "threads" and not address:
        return None
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise InputError("--task-runner dask needs prefect-dask; expected it installed "
                         "(pip install 'reviewlstm[dask]')") from None
    if address:
        _check_scheduler(address)
        return DaskTaskRunner(address=address)
    from reviewlstm.cores import available_cores

    return DaskTaskRunner(cluster_kwargs={"n_workers": available_cores(), "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


def _check_scheduler(address: str) -> None:
    """A scheduler that does not answer is one line at once, not a 30 s timeout inside Dask."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        host = port = None
    if not host:
        raise InputError(f"--dask-address {address!r}: expected tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise InputError(f"--dask-address {address}: no Dask scheduler answers ({e.strerror or e}); "
                         "expected a running `dask scheduler`") from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="reviewlstm", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline (cached stages are reused)")
    _common(run)
    run.add_argument("--until", choices=STAGES, default=STAGES[-1], help="last stage to run")
    _runner(run)
    stage = sub.add_parser("stage", help="run one stage now; its inputs come from cache or are computed")
    stage.add_argument("name", choices=STAGES)
    _common(stage)
    _runner(stage)
    status = sub.add_parser("status", help="list each stage as fresh or stale, running nothing")
    _common(status)
    predict = sub.add_parser("predict", help="ratings for review texts or a file of reviews, from the champion or a variant")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="review texts to rate")
    predict.add_argument("--input", metavar="FILE", help="a CSV/TSV/Parquet of reviews (text columns as ingest.text_columns)")
    predict.add_argument("--output", metavar="FILE", help="where to write --input with its ratings (.csv, .tsv or .parquet)")
    predict.add_argument("--model", metavar="VARIANT",
                         help="the latest model of this variant trained with the current settings (default: the champion)")
    predict.add_argument("--batch-size", type=int, default=2000, help="reviews preprocessed at a time (default 2000)")
    _common(predict)
    ui = sub.add_parser("ui", help="start a local Prefect server, the work pool, the deployments and a worker")
    ui.add_argument("--port", type=int, default=4200, help="the server's port on 127.0.0.1 (default 4200)")
    return ap


def load_config(args: argparse.Namespace):
    """The profile or config file, with --set overrides applied and validated."""
    from reviewlstm.config import DEFAULT_PROFILE, PipelineConfig, only_variants, profile, settings_error, with_overrides
    from pydantic import ValidationError

    try:
        if args.config:
            try:
                cfg = PipelineConfig.model_validate_json(open(args.config, encoding="utf-8").read())
            except OSError as e:
                raise InputError(f"{args.config}: cannot read config ({e.strerror})") from None
            except UnicodeDecodeError as e:
                raise InputError(f"{args.config}: byte {e.start} is not UTF-8; expected a JSON file of "
                                 "PipelineConfig settings") from None
        else:
            cfg = profile(args.profile or DEFAULT_PROFILE)
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise InputError(f"--set {item!r}: expected KEY=VALUE, e.g. prune.min_count=3")
            overrides[key] = value
        cfg = with_overrides(cfg, overrides)
        return only_variants(cfg, args.variant)
    except ValidationError as e:
        raise InputError(settings_error(e, args.config or "settings")) from None
    except ValueError as e:
        raise InputError(str(e)) from None


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def render(summary: dict[str, Any]) -> str:
    out = [_table([[s["stage"], s["status"], f"{s['seconds']:.2f}"] for s in summary["stages"]],
                  ["stage", "status", "seconds"])]
    figures = [[stage, k, v] for stage, fig in summary.get("figures", {}).items() for k, v in fig.items()]
    if figures:
        out.append(_table(figures, ["stage", "figure", "value"]))
    if summary.get("metrics"):
        from reviewlstm.reports import COLUMNS, comparison

        rows = comparison(summary["metrics"])
        header = ["variant", *COLUMNS, "study_accuracy", "study_rmse"]
        out.append(_table([[("" if r[h] is None else f"{r[h]:.3f}" if isinstance(r[h], float) else r[h]) for h in header]
                           for r in rows], header))
    if summary.get("promotion"):
        p = summary["promotion"]
        out.append(f"promote: {'promoted' if p['promoted'] else 'kept'}; champion {p['champion']}: {p['reason']}")
    return "\n\n".join(out)


def _show(summary: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(summary, indent=1) if as_json else render(summary))


def cmd_run(args: argparse.Namespace, until: str, force: list[str]) -> int:
    from reviewlstm.storage import sweep_temp

    cfg = load_config(args)
    sweep_temp()  # what SIGKILLed commands left behind
    if not force:  # nothing to run: the usual table, without a flow run or a server to hold it
        from flows.status import fresh_summary

        summary = fresh_summary(args.raw, args.data_dir, cfg, until, promote=args.command == "run")
        if summary is not None:
            _show(summary, args.json)
            return 0
    from flows.connect import answers, configured_api_url, use_project_server

    use_project_server()  # `reviewlstm ui` running for this project: the run shows in its UI
    url = configured_api_url()
    if url and not answers(url, timeout=10):  # at once, instead of after the client's retries
        raise InputError(f"Prefect API at {url} does not answer; expected a running server (start one with "
                         f"`reviewlstm ui`), or unset PREFECT_API_URL to run without one")
    runner = task_runner(args.task_runner, args.dask_address)
    if not url and runner is None:
        # no server to report to: the stages run as plain calls, without a temporary server
        from flows.pipeline import run_plain

        _command_log(args.verbose)
        _show(run_plain(cfg, args.raw, args.data_dir, until, force, promote=args.command == "run"), args.json)
        return 0
    if not url:
        from flows.server import start_temporary_server

        start_temporary_server()
    from flows.pipeline import pipeline

    if not args.verbose:
        _quiet_prefect_console()

    # `stage` runs one stage; `run` also promotes the best variant after evaluate
    flow = pipeline.with_options(task_runner=runner) if runner is not None else pipeline
    summary = flow(raw=args.raw, data_dir=args.data_dir, config=cfg, until=until, force=force,
                       promote=args.command == "run")
    _show(summary, args.json)
    return 0


def _command_log(verbose: bool) -> None:
    """Without a run's logs to read, the stages' lines (each epoch's) go to a terminal, or with -v anywhere."""
    import logging

    log = logging.getLogger("reviewlstm")
    if (verbose or sys.stderr.isatty()) and not log.handlers:  # once, when main runs again in a process
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    log.propagate = False


def _quiet_prefect_console() -> None:
    """Keep Prefect's run logs in the API and UI, off the terminal: the command prints its own."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.CRITICAL + 1)


def cmd_status(args: argparse.Namespace) -> int:
    from flows.status import stage_status
    from flows.connect import use_project_server
    from flows.overview import server_overview

    use_project_server()
    server = server_overview()  # None without PREFECT_API_URL; a silent server is an InputError
    rows = stage_status(args.raw, args.data_dir, load_config(args))
    if args.json:
        print(json.dumps({"stages": rows, **(server or {})}, indent=1))
    else:
        print(_table([[r["stage"], r["status"], r["reason"]] for r in rows], ["stage", "status", "why"]))
        if server is not None:
            deps = [[d["deployment"], d["schedule"] or "-", d["next_run"] or "-"] for d in server["deployments"]]
            print(f"\nserver {server['server']}: " + (f"{len(deps)} deployments\n" + _table(deps, ["deployment", "schedule", "next run"])
                                                    if deps else "no deployments (run `reviewlstm ui` or `prefect deploy --all`)"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Ratings from the champion (registry.json) or --model VARIANT; no Prefect run is needed."""
    from reviewlstm import predict as lib

    if bool(args.texts) == bool(args.input):
        raise InputError("predict: expected review texts or --input FILE --output FILE (one of them)")
    if args.input and not args.output:
        raise InputError(f"{args.input}: no --output; expected --output FILE (.csv, .tsv or .parquet)")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: expected a positive number")
    cfg = load_config(args)
    if args.model:
        from flows.status import variant_ref

        ref = variant_ref(args.model, cfg, args.data_dir, args.raw)
    else:  # the library alone: no Prefect import on this path
        from reviewlstm.registry import champion_ref

        ref = champion_ref(args.data_dir)
    predictor = lib.load_ref(ref)
    if args.input:
        summary = {"model": ref["label"], **lib.score_file(predictor, args.input, args.output,
                                                            list(cfg.ingest.text_columns), args.batch_size, cfg.ingest)}
        print(json.dumps(summary, indent=1) if args.json else
              f"{summary['rows']} reviews rated by {ref['label']} -> {summary['output']}")
        return 0
    pred = predictor.predict(args.texts, args.batch_size)
    if args.json:
        rows = []
        for i, text in enumerate(args.texts):
            row: dict[str, Any] = {"text": text, "rating": int(pred.ratings[i]), "expected_rating": round(float(pred.expected[i]), 4)}
            if pred.probabilities is not None:
                row["probabilities"] = {str(k + predictor.prep.label_min): round(float(p), 4)
                                        for k, p in enumerate(pred.probabilities[i])}
            rows.append(row)
        print(json.dumps({"model": ref["label"], "predictions": rows}, indent=1))
    else:
        for text, rating in zip(args.texts, pred.ratings):
            print(f"{int(rating)}  {text if len(text) <= 70 else text[:67] + '...'}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from flows.ui import serve

    return serve(port=args.port)


# What the file system said, as users need to hear it; the errno decides, not the exception type.
FS_ERRORS = {
    errno.ENOSPC: "no space left on device; free some space or pass --data-dir on another disk, then run again",
    errno.EDQUOT: "disk quota exceeded; free some space or pass --data-dir elsewhere, then run again",
    errno.EACCES: "permission denied; expected a folder this user can write (or pass --data-dir)",
    errno.EPERM: "operation not permitted; expected a folder this user can write (or pass --data-dir)",
    errno.EROFS: "read-only file system; expected a writable folder (or pass --data-dir)",
    errno.ENOTDIR: "not a directory (a file is in the way); expected a folder (or pass --data-dir)",
    errno.EFBIG: "file too large for this file system or process limit",
}
LOW_SPACE = 1 << 20  # bytes: below this, a failed write is taken for a full disk


def environment_error(exc: BaseException, data_dir: str | None) -> str | None:
    """One line for a failure of the machine rather than of the input: a full or read-only disk,
    a folder that cannot be written, the Prefect API gone. None: not one of those (a bug)."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for e in chain:
        if _is_api_failure(e):
            url = _api_url()
            reason = str(chain[-1]).strip().splitlines()[0] if str(chain[-1]).strip() else type(chain[-1]).__name__
            return (f"Prefect API at {url} does not answer ({reason}); start the server (`reviewlstm ui`) or "
                    f"unset PREFECT_API_URL to run without one; stage outputs written so far are complete")
    for e in chain:
        code = os_error_code(e)  # polars and others put the OS error in the message only
        if code in FS_ERRORS:
            where = getattr(e, "filename", None) or data_dir or "."
            return f"{where}: {FS_ERRORS[code]}; nothing partial was kept"
    if data_dir is not None and _free_bytes(data_dir) < LOW_SPACE:  # numpy and torch say less
        return f"{data_dir}: {FS_ERRORS[errno.ENOSPC]}; nothing partial was kept"
    return None


def _is_api_failure(e: BaseException) -> bool:
    if "Failed to reach API" in str(e):
        return True
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError))


def _api_url() -> str:
    try:
        from flows.connect import configured_api_url

        return configured_api_url() or "(none)"
    except Exception:
        return os.environ.get("PREFECT_API_URL", "(unknown)")


def _free_bytes(path: str) -> int:
    where = Path(path).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return LOW_SPACE


class Stopped(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stopped(signum: int, frame: Any) -> None:
    raise Stopped(signum)


def _signal_of(e: BaseException) -> int | None:
    """The signal an exception stands for: Ctrl-C, SIGTERM (ours, or Prefect's TerminationSignal)."""
    if isinstance(e, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(e, Stopped):
        return e.signum
    return getattr(e, "signal", None) if type(e).__name__ == "TerminationSignal" else None


def _cancel_stopped_runs() -> None:
    """Flow runs stopped on a signal are cancelled, not crashed (a second at most each)."""
    pipeline = sys.modules.get("flows.pipeline")
    for run_id in getattr(pipeline, "STOPPED", []):
        try:
            from prefect.client.orchestration import get_client
            from prefect.states import Cancelled

            with get_client(sync_client=True, httpx_settings={"timeout": 2}) as client:
                client.set_flow_run_state(run_id, Cancelled(message="stopped by a signal"), force=True)
        except Exception:  # noqa: BLE001 - the server may be gone too: the line below still holds
            pass


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 2 bad input or settings (one line); 1 a fault of the machine (one line:
    disk full, folder not writable, Prefect API gone); 130 or 143 stopped by Ctrl-C or SIGTERM (one line).
    141 (from `entry`) the reader of stdout left.
    Anything else is a bug: its traceback shows."""
    args = parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        signal.signal(signal.SIGTERM, _stopped)  # a service manager's or Prefect worker's stop, like Ctrl-C
    try:
        data_dir = getattr(args, "data_dir", None)
        if data_dir and Path(data_dir).exists() and not Path(data_dir).is_dir():
            raise InputError(f"{data_dir}: a file, not a folder; expected the data folder (--data-dir)")
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "ui":
            return cmd_ui(args)
        if args.command == "run":
            return cmd_run(args, args.until, [])
        if args.command == "stage":
            return cmd_run(args, args.name, [args.name])
        return cmd_status(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        message = environment_error(e, getattr(args, "data_dir", None))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    except BaseException as e:
        signum = _signal_of(e)
        if signum is None:
            raise
        _cancel_stopped_runs()
        print(f"error: stopped by {signal.Signals(signum).name}; stage outputs written so far are complete, "
              f"nothing partial was kept", file=sys.stderr)
        return 128 + signum


def entry(argv: list[str] | None = None) -> None:
    """The console script: main, then an exit without the interpreter's teardown of every module,
    slow once torch is loaded (bench/RESULTS.md, "Local commands"); the atexit handlers run and
    the output is flushed first, as sys.exit would."""
    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`reviewlstm predict ... | head -1`): end quietly, as cat would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the last flush cannot fail again
        code = 128 + signal.SIGPIPE
    atexit._run_exitfuncs()  # atexit has no public call for this; os._exit would skip them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
