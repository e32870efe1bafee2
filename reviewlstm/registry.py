"""The model registry: which trained model is the champion that predictions use, and every model
that ever was.

`<data_dir>/registry.json` (written atomically, under a lock) lists every promoted model with its
metrics, the validation data they were measured on, the flow run that promoted it and the paths it
needs. Each promoted model is copied into a bundle, `<data_dir>/champions/<id>/` (model.pt,
model.json, vocab/, preprocess.json), so clearing the stage outputs never breaks a prediction.

Promotion: the best variant of a run by `select_by` becomes the champion only if it beats the
current champion on the same validation reviews. A champion measured on other validation data is
first scored on the current validation reviews, through its own preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from reviewlstm.errors import InputError
from reviewlstm.fingerprint import dir_digest, file_digest
from reviewlstm.predict import PREPROCESS, Preprocess
from reviewlstm.storage import atomic_file, fsync_tree

REGISTRY = "registry.json"
LOCK = ".registry.lock"
CHAMPIONS = "champions"
LOWER_IS_BETTER = {"rmse_expected", "rmse", "mae", "mae_expected", "mae_median"}
HIGHER_IS_BETTER = {"accuracy", "macro_f1", "within_one"}


def registry_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / REGISTRY


def better(a: float, b: float, metric: str) -> bool:
    """True when score a is strictly better than b on metric (a tie keeps the incumbent)."""
    if metric in LOWER_IS_BETTER:
        return a < b
    if metric in HIGHER_IS_BETTER:
        return a > b
    raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER)}")


def best_variant(metrics: dict[str, dict[str, Any]], metric: str) -> str:
    """The variant with the best finite score; the first one listed wins a tie."""
    best = None
    for name, m in metrics.items():
        score = m.get(metric)
        if score is None or not math.isfinite(score):
            continue
        if best is None or better(score, metrics[best][metric], metric):
            best = name
    if best is None:
        raise InputError(f"metrics.json: no variant has a finite {metric!r}; expected at least one evaluated variant")
    return best


def validation_digest(texts: list[str], labels: np.ndarray) -> str:
    """The validation reviews' identity: their raw text and true class, in order."""
    h = hashlib.sha256()
    for t, y in zip(texts, np.asarray(labels).tolist()):
        h.update(f"{int(y)}\0{t}\0".encode())
    return h.hexdigest()


def empty() -> dict[str, Any]:
    return {"version": 1, "champion": None, "models": []}


def load(data_dir: str | Path) -> dict[str, Any]:
    """The registry, or an empty one where there is none yet; a damaged file is an InputError."""
    path = registry_path(data_dir)
    try:
        reg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({type(e).__name__}); expected the model registry") from None
    if not isinstance(reg, dict) or not isinstance(reg.get("models"), list) or "champion" not in reg:
        raise InputError(f"{path}: expected an object with 'champion' and 'models'")
    return reg


def entry(reg: dict[str, Any], model_id: str | None) -> dict[str, Any] | None:
    return next((m for m in reg["models"] if m.get("id") == model_id), None) if model_id else None


def champion(data_dir: str | Path) -> dict[str, Any] | None:
    reg = load(data_dir)
    return entry(reg, reg["champion"])


def bundle_dir(data_dir: str | Path, item: dict[str, Any]) -> Path:
    """An entry's bundle; registry paths are relative to the data directory."""
    return Path(data_dir) / item["bundle"]


def champion_bundle(data_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """The champion's entry and bundle folder; InputError when there is none yet."""
    item = champion(data_dir)
    if item is None:
        raise InputError(f"{registry_path(data_dir)}: no champion yet; expected a promoted model "
                         f"(run `reviewlstm run` to train, evaluate and promote one, or pass --model VARIANT)")
    return item, bundle_dir(data_dir, item)


def bundle_files(bundle: Path) -> dict[str, str]:
    """Each file of a bundle (path inside it) and its digest, as promotion records them."""
    return {p.relative_to(bundle).as_posix(): file_digest(p) for p in sorted(bundle.rglob("*")) if p.is_file()}


def bundle_problem(item: dict[str, Any], bundle: Path) -> str | None:
    """The first way a champion's bundle differs from what promotion wrote (a file missing,
    changed or added); None when it is intact. A bundle promoted before files were recorded is
    checked for its essential files only."""
    want = item.get("files")
    if want is None:
        missing = _missing(bundle)
        return None if missing is None else f"{missing}: no such file"
    if not bundle.is_dir():
        return f"{bundle}: no such folder"
    have = bundle_files(bundle)
    for name, digest in want.items():
        if name not in have:
            return f"{bundle / name}: no such file"
        if have[name] != digest:
            return f"{bundle / name}: changed since it was promoted"
    extra = sorted(set(have) - set(want))
    return f"{bundle / extra[0]}: not a file of the promoted bundle" if extra else None


def champion_ref(data_dir: str | Path) -> dict[str, Any]:
    """The champion as a model reference for `reviewlstm.predict.load_ref`, its bundle checked
    file by file against the digests promotion recorded."""
    item, bundle = champion_bundle(data_dir)
    if (problem := bundle_problem(item, bundle)) is not None:
        raise InputError(f"{problem}; expected the champion {item['id']} as it was promoted "
                         f"(`reviewlstm run` repairs it from the model it was made from)")
    return {"bundle": str(bundle), "label": f"champion {item['id']}", "id": item["id"], "variant": item["variant"]}


@contextmanager
def locked(data_dir: str | Path) -> Iterator[None]:
    """One promotion at a time per data directory (read, decide, write as one step)."""
    import fcntl

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(data_dir) / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def save(data_dir: str | Path, reg: dict[str, Any]) -> None:
    """Write the registry atomically: a temporary file, fsynced, renamed over the old one."""
    with atomic_file(registry_path(data_dir), "w") as f:
        json.dump(reg, f, indent=1, sort_keys=True)


def write_bundle(data_dir: str | Path, model_id: str, model_dir: Path, vocab_dir: Path, prep: Preprocess) -> Path:
    """Copy what predictions need into champions/<model_id>/, atomically (temp folder renamed)."""
    final = Path(data_dir) / CHAMPIONS / model_id
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_id}.", dir=final.parent))
    try:
        _copy_model(model_dir, tmp)
        _export_lstms(tmp)
        (tmp / "vocab").mkdir()
        for f in vocab_dir.iterdir():
            if f.is_file() and f.name != "record.json":
                shutil.copy2(f, tmp / "vocab" / f.name)
        (tmp / PREPROCESS).write_text(prep.model_dump_json(indent=1))
        fsync_tree(tmp)
        if final.exists():  # a leftover of a crash between this rename and the registry write
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _copy_model(model_dir: Path, into: Path) -> None:
    """A model folder's files (its record aside); an ensemble's members go to members/<name>/."""
    for f in model_dir.iterdir():
        if f.is_file() and f.name != "record.json":
            shutil.copy2(f, into / f.name)
    meta = json.loads((model_dir / "model.json").read_text())
    if meta.get("config", {}).get("kind") == "ensemble":
        for name, member in meta["members"].items():
            (into / "members" / name).mkdir(parents=True)
            _copy_model(model_dir / member["folder"], into / "members" / name)
            member["folder"] = f"members/{name}"
        (into / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _export_lstms(bundle: Path) -> None:
    """model.onnx beside each LSTM's model.pt in a bundle, so that predict needs no torch
    (reviewlstm/runtime.py); where ONNX Runtime or the export is missing, predict uses torch."""
    from reviewlstm import runtime

    if not runtime.available():
        return
    from reviewlstm.config import ModelConfig
    from reviewlstm.inference import load_model

    for meta_file in [bundle / "model.json", *sorted(bundle.glob("members/*/model.json"))]:
        meta = json.loads(meta_file.read_text())
        if meta.get("config", {}).get("kind", "lstm") != "lstm":
            continue
        model = load_model(ModelConfig.model_validate(meta["config"]), int(meta["vocab_size"]),
                           meta_file.parent / "model.pt", int(meta["num_classes"]))
        runtime.export(model, meta_file.parent / runtime.ONNX)


def _repair(data_dir: str | Path, reg: dict[str, Any], current: dict[str, Any], cand: "Candidate") -> str | None:
    """Rewrite a damaged champion bundle from the model and vocabulary it was made from, when
    they are still there unchanged (this run's, or the folders the entry names); a note of what
    was done, or None (an intact bundle, or nothing to repair it from: promote then replaces it)."""
    bundle = bundle_dir(data_dir, current)
    problem = bundle_problem(current, bundle)
    if problem is None:
        return None
    sources = current.get("sources", {})

    def found(digest: str | None, run: dict[str, Any] | None, recorded: str | None) -> Path | None:
        places = [run["path"]] if run and run.get("digest") == digest else []
        places += [Path(data_dir) / recorded] if recorded else []
        return next((Path(p) for p in places if digest and Path(p).is_dir()
                     and dir_digest(p, skip=["record.json"]) == digest), None)

    model_dir = found(current.get("model_digest"), cand.models.get(current.get("variant", "")),
                      sources.get(f"model[{current.get('variant')}]"))
    vocab_dir = found(current.get("vocab_digest"), cand.vocab, sources.get("vocab"))
    if model_dir is None or vocab_dir is None:
        return None
    try:
        write_bundle(data_dir, current["id"], model_dir, vocab_dir, Preprocess.model_validate(current["preprocess"]))
    except (OSError, KeyError, ValueError):  # an ensemble whose members are gone: nothing to repair it from
        return None
    current["files"] = bundle_files(bundle)
    save(data_dir, reg)
    return f"repaired the champion {current['id']} ({problem}) from {model_dir}"


@dataclass
class Candidate:
    """A run's evaluated variants and everything needed to register one of them."""

    metrics: dict[str, dict[str, Any]]  # variant -> metrics (confusion matrices allowed)
    models: dict[str, dict[str, Any]]  # variant -> train record ({"path", "digest", ...})
    vocab: dict[str, Any]  # the prune record
    prep: Preprocess
    valid_texts: list[str]
    valid_labels: np.ndarray  # classes 0..C-1
    select_by: str
    run: dict[str, Any] | None  # {"id", "name", "flow"} of the flow run; None: a command run with no server
    sources: dict[str, str]  # stage outputs it came from, for the record


def _missing(bundle: Path) -> Path | None:
    """The first file a champion's bundle needs to predict that is not there."""
    return next((bundle / name for name in ("model.json", PREPROCESS, "vocab") if not (bundle / name).exists()), None)


def champion_score(item: dict[str, Any], bundle: Path, cand: Candidate, digest: str) -> tuple[float, str]:
    """The champion's select_by score on the candidate's validation reviews, and how it was found."""
    metrics = item.get("metrics", {})
    if (problem := bundle_problem(item, bundle)) is not None:  # a champion that can no longer be trusted
        raise InputError(f"{problem}; expected the champion's bundle as it was promoted")
    if item.get("validation", {}).get("digest") == digest and cand.select_by in metrics:
        return float(metrics[cand.select_by]), "recorded on the same validation reviews"
    from reviewlstm.metrics import classification_metrics, regression_metrics
    from reviewlstm.predict import load_bundle

    predictor = load_bundle(bundle)
    if predictor.prep.label_min != cand.prep.label_min or predictor.num_classes != cand.prep.label_max - cand.prep.label_min + 1:
        raise InputError(f"{bundle}: rates on {predictor.prep.label_min}..{predictor.prep.label_min + predictor.num_classes - 1}, "
                         f"expected {cand.prep.label_min}..{cand.prep.label_max}")
    scores = predictor.scores(cand.valid_texts)
    y = np.asarray(cand.valid_labels, dtype=np.int64)
    m = (regression_metrics(y, scores, 0, predictor.num_classes - 1) if predictor.regress
         else classification_metrics(y, scores, predictor.class_weights))
    return float(m[cand.select_by]), "re-scored on the current validation reviews through its own preprocessing"


def _verdict(name: str, promoted: bool, champion_id: str, select_by: str, score: float, theirs: float, how: str) -> str:
    return f"{name} {'beats' if promoted else 'does not beat'} {champion_id} on {select_by}: {score:.4f} vs {theirs:.4f} ({how})"


def _kept(data_dir: str | Path, current: dict[str, Any] | None, name: str, score: float, select_by: str,
          model_digest: str, digest: str) -> dict[str, Any] | None:
    """The decision to keep the champion when the registry alone shows it: the candidate is the
    champion, or does not beat the score the champion has recorded on the same validation reviews
    (and its bundle is there). None when promotion has to score or to replace it."""
    if current is None or current.get("validation", {}).get("digest") != digest:
        return None
    if bundle_problem(current, bundle_dir(data_dir, current)) is not None:  # promote repairs or replaces it
        return None
    recorded = current.get("metrics", {}).get(select_by)
    if current.get("model_digest") == model_digest:
        return {"reason": "already the champion", "previous_score": recorded}
    if recorded is None or better(score, recorded, select_by):
        return None
    return {"reason": _verdict(name, False, current["id"], select_by, score, float(recorded),
                               "recorded on the same validation reviews"), "previous_score": float(recorded)}


def kept(data_dir: str | Path, metrics: dict[str, dict[str, Any]], select_by: str, model_digests: dict[str, str],
         digest: str) -> dict[str, Any] | None:
    """promote's decision, taken from the registry alone, when it keeps the champion without
    scoring it (see _kept); None when promote would score or replace it. Writes nothing."""
    name = best_variant(metrics, select_by)
    score = float(metrics[name][select_by])
    current = champion(data_dir)
    found = _kept(data_dir, current, name, score, select_by, model_digests[name], digest)
    if found is None:
        return None
    return {"variant": name, "select_by": select_by, "score": score, "previous": current["id"],
            "previous_score": found["previous_score"], "promoted": False, "champion": current["id"],
            "reason": found["reason"]}


def promote(data_dir: str | Path, cand: Candidate, now: datetime | None = None) -> dict[str, Any]:
    """Make the run's best variant the champion if it beats the current one; return the decision.

    The decision: promoted (bool), variant, select_by, score, champion (id after the decision),
    previous (id before), previous_score (on these validation reviews, when there was one), reason.
    """
    name = best_variant(cand.metrics, cand.select_by)
    score = float(cand.metrics[name][cand.select_by])
    digest = validation_digest(cand.valid_texts, cand.valid_labels)
    model = cand.models[name]
    with locked(data_dir):
        reg = load(data_dir)
        current = entry(reg, reg["champion"])
        decision: dict[str, Any] = {"variant": name, "select_by": cand.select_by, "score": score,
                                    "previous": current["id"] if current else None, "previous_score": None}
        repaired = _repair(data_dir, reg, current, cand) if current is not None else None
        keep = _kept(data_dir, current, name, score, cand.select_by, model["digest"], digest)
        if current is None:
            promoted, reason = True, "no champion yet"
        elif keep is not None:
            promoted, reason, decision["previous_score"] = False, keep["reason"], keep["previous_score"]
        else:
            try:
                theirs, how = champion_score(current, bundle_dir(data_dir, current), cand, digest)
            except InputError as e:  # its bundle was removed or damaged: it cannot predict anyway
                promoted, reason = True, f"the champion {current['id']} cannot be used ({e})"
            else:
                decision["previous_score"] = theirs
                promoted = better(score, theirs, cand.select_by)
                reason = _verdict(name, promoted, current["id"], cand.select_by, score, theirs, how)
        if promoted:
            stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
            model_id = f"{stamp}-{name}-{model['digest'][:8]}"
            bundle = write_bundle(data_dir, model_id, Path(model["path"]), Path(cand.vocab["path"]), cand.prep)
            meta = json.loads((bundle / "model.json").read_text())
            meta.setdefault("vocab_digest", cand.vocab["digest"])  # a baseline's or an ensemble's: the run's
            reg["models"].append({
                "id": model_id,
                "variant": name,
                "promoted_at": (now or datetime.now(timezone.utc)).isoformat(),
                "flow_run": cand.run,
                "select_by": cand.select_by,
                "score": score,
                "metrics": {k: v for k, v in cand.metrics[name].items() if k != "confusion"},
                "validation": {"digest": digest, "rows": len(cand.valid_texts)},
                "beat": {"id": decision["previous"], "score": decision["previous_score"]} if current else None,
                "model_digest": model["digest"],
                "vocab_digest": meta["vocab_digest"],
                "config": meta["config"],
                "preprocess": cand.prep.model_dump(mode="json"),
                "bundle": f"{CHAMPIONS}/{model_id}",
                "files": bundle_files(bundle),
                "sources": cand.sources,
            })
            reg["champion"] = model_id
            save(data_dir, reg)
        if repaired:
            reason = f"{repaired}; {reason}"
        decision.update(promoted=promoted, champion=reg["champion"], reason=reason, repaired=repaired)
    return decision
