"""Training in a child process, so that variants trained at the same time stay independent.

torch keeps its random generator and its thread count per process: two variants trained on two
threads of one process would draw each other's dropout masks and lose their determinism. A child
process per variant keeps every run bit-identical to training it alone, lets the variants use
the cores in parallel, and works the same in a thread, a Dask worker (daemonic, so no
multiprocessing children) or a plain shell.

The parent sends a job (pickled to a file: configs, arrays and paths, no code); the child streams
one JSON line per epoch on stdout, saves the weights to the model file itself and the history to
the job's result file. The parent never imports torch, which would hold memory in the orchestrating process for the
whole run (bench/RESULTS.md, "Memory").
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewlstm.errors import InputError
from reviewlstm.storage import temp_dir

_ERROR = "reviewlstm-child-error"
_RUNNING: set[subprocess.Popen] = set()  # this process's training children
_RESUMED = "reviewlstm-child-resumed"  # epochs a checkpoint already held


def train_in_child(job: dict[str, Any], model_file: str | Path, on_epoch: Callable[[dict], None] | None = None,
                   on_resume: Callable[[int], None] | None = None, job_kind: str = "train") -> list[dict]:
    """Run `train.train_model(**job)` (job_kind "pretrain": `lm.pretrain(**job)`) in a fresh Python
    process, which saves the trained state_dict (torch.save) to model_file; returns the history.
    A job's `encoder_file` is loaded (tensors only) into train_model's `encoder`.

    on_resume(epochs) is called first when the job's checkpoint holds that many epochs already.
    An InputError in the child is raised here with its message, an OSError with its errno (so
    a full disk is still reported as one); any other failure is a RuntimeError with the child's
    last words.
    """
    tmp = temp_dir("train")
    try:
        job_file, result_file = Path(tmp) / "job.pkl", Path(tmp) / "history.json"
        job_file.write_bytes(pickle.dumps({"kwargs": job, "model": str(model_file), "result": str(result_file),
                                           "parent": os.getpid(), "kind": job_kind}))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "reviewlstm.child", str(job_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        _RUNNING.add(proc)
        stderr: list[str] = []
        drain = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
        drain.start()
        error = None
        try:
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:  # something the child printed that is not ours
                    message = None
                if not isinstance(message, dict):
                    stderr.append(line)
                    continue
                if message.get(_ERROR):
                    error = message
                elif _RESUMED in message:
                    if on_resume is not None:
                        on_resume(message[_RESUMED])
                elif on_epoch is not None:
                    on_epoch(message)
            proc.wait()
        finally:
            _RUNNING.discard(proc)
            if proc.poll() is None:  # the parent was interrupted: take the child down with it
                proc.kill()
                proc.wait()
        drain.join(timeout=5)
        if error is not None and error["input"]:
            raise InputError(error["message"])
        if error is not None and error.get("errno"):  # a full disk stays an OSError with its errno
            raise OSError(error["errno"], error["strerror"], error["filename"])
        if error is not None or proc.returncode != 0:
            detail = error["message"] if error else "".join(stderr[-20:]).strip() or f"exit status {proc.returncode}"
            raise RuntimeError(f"training in a child process failed: {detail}")
        return json.loads(result_file.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def kill_children() -> None:
    """End every training child of this process now (Ctrl-C, SIGTERM): the threads waiting on
    them return at once instead of when their training would have ended."""
    for proc in list(_RUNNING):
        proc.kill()


def parent_death_signal(sig: int) -> None:
    """Linux: the kernel sends this process `sig` when its parent goes, SIGKILLed or not (kept
    across exec, so a child's preexec_fn may call it); elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _die_with(parent: int) -> None:
    """End this process the moment the parent does (SIGKILLed, say): nobody would read the
    result, and a later run resuming from the checkpoint must not race a training left behind."""
    import signal

    parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # it went before prctl took effect
        os._exit(1)

    def watch() -> None:  # elsewhere, at most a second late
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main(job_file: str) -> int:
    import torch

    from reviewlstm.train import train_model
    from reviewlstm.checkpoint import checkpoint_epochs

    job = pickle.loads(Path(job_file).read_bytes())
    _die_with(job["parent"])
    emit = lambda row: print(json.dumps(row), flush=True)  # noqa: E731
    kwargs = dict(job["kwargs"])
    try:
        if job.get("kind") == "pretrain":
            from reviewlstm.lm import pretrain

            train = kwargs.pop("train")  # a Split: its ids may be a memory-mapped file, sent as its name
            state, history = pretrain(**kwargs, ids=train.ids, lengths=train.lengths, on_epoch=emit)
        else:
            if encoder_file := kwargs.pop("encoder_file", None):
                kwargs["encoder"] = torch.load(encoder_file, map_location="cpu", weights_only=True)
            if (checkpoint := kwargs.get("checkpoint")) and (done := checkpoint_epochs(checkpoint)):
                emit({_RESUMED: done})
            state, history = train_model(**kwargs, on_epoch=emit)
        with open(job["model"], "wb") as f:  # a file object: a full disk is an OSError naming ENOSPC
            torch.save(state, f)
    except InputError as e:
        emit({_ERROR: True, "input": True, "message": str(e)})
        return 2
    except OSError as e:
        emit({_ERROR: True, "input": False, "message": f"{type(e).__name__}: {e}", "errno": e.errno,
              "strerror": e.strerror, "filename": e.filename})
        return 1
    except Exception as e:  # reported by the parent, with this line
        emit({_ERROR: True, "input": False, "message": f"{type(e).__name__}: {e}"})
        return 1
    Path(job["result"]).write_text(json.dumps(history))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
