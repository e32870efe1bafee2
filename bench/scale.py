"""Preprocessing at 10x the data: time and peak memory of ingest .. encode.

    .venv/bin/python bench/scale.py [--factor 10] [--reps 2] [--out bench/results/scale.json]

The real reviews are replicated --factor times into a temporary CSV (235k reviews at 10x). Then,
in one run, each in a fresh process:
- library route, 1x and 10x in turn, --reps times: ingest, clean, tokenize, prune, encode as the
  stage tasks call them (no Prefect, no files written); per stage its seconds and the process's
  peak RSS once the stage is done (ru_maxrss: it only grows, so a jump shows the stage that set it);
- command route, once per size: `reviewlstm run --until encode --json` into an empty data folder
  (a temporary Prefect home; no server): per-stage seconds from the JSON and the command's peak
  RSS (/usr/bin/time -v); with --before CHECKOUT, the same command of that checkout side by side,
  and whether each stage's files are the same bytes in both.
Goals: 10x takes <= 12x the time of 1x; peak RSS < 2 GB (issue 22: 100x, <= 110x, <= 2 GB).

    .venv/bin/python bench/scale.py --factor 100 --no-library --before /tmp/oldtree
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REAL, ROOT, environ_without, load, say

STAGES = ["ingest", "clean", "tokenize", "prune", "encode"]


def child(path: str) -> None:
    """The library route over one file; prints one JSON line."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from reviewlstm import encode, ingest, text, vocab
    from reviewlstm.config import article

    cfg = article()
    out: dict[str, dict] = {}

    def done(stage: str, start: float) -> None:
        out[stage] = {"seconds": round(time.perf_counter() - start, 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}

    t = time.perf_counter()
    reviews = ingest.reviews(ingest.read_table(path), cfg.ingest, source=path)
    done("ingest", t)
    t = time.perf_counter()
    cleaned = reviews.with_columns(text=text.clean(reviews["text"], cfg.clean))
    done("clean", t)
    t = time.perf_counter()
    tokens = pl.DataFrame([pl.Series("tokens", text.tokenize(cleaned["text"].to_list(), cfg.tokenize),
                                     dtype=pl.List(pl.Utf8)), cleaned["label"]])
    done("tokenize", t)
    t = time.perf_counter()
    counts = vocab.count_tokens(tokens["tokens"].to_list())
    table = vocab.vocabulary(counts, cfg.prune.min_count)
    done("prune", t)
    t = time.perf_counter()
    encoded = encode.encode(tokens, table, cfg.encode)
    done("encode", t)
    print(json.dumps({"rows": len(encoded), "vocab": len(table), "stages": out}))


def run_child(path: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(path)], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_s"] = round(time.perf_counter() - start, 2)
    res["work_s"] = round(sum(s["seconds"] for s in res["stages"].values()), 2)
    res["peak_rss_mb"] = max(s["peak_rss_mb"] for s in res["stages"].values())
    return res


def run_cli(path: Path, tmp: Path, tag: str, checkout: Path = ROOT) -> dict:
    env = environ_without("PREFECT_")
    env.update(PREFECT_HOME=str(tmp / f"home-{tag}"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "flows.cli", "run", "--until", "encode", "--json",
           "--raw", str(path), "--data-dir", str(tmp / f"data-{tag}")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    summary = json.loads(proc.stdout)
    digests = {s["stage"]: {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(Path(s["output"]).iterdir())
                            if f.name != "record.json"} for s in summary["stages"]}
    shutil.rmtree(tmp / f"data-{tag}", ignore_errors=True)  # 100x outputs take gigabytes
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(rss_kb / 1024, 1),
            "stages": {s["stage"]: s["seconds"] for s in summary["stages"]},
            "stage_sum_s": round(sum(s["seconds"] for s in summary["stages"]), 2), "digests": digests}


def library_route(small: Path, big: Path, big_tag: str, reps: int) -> dict:
    """The stages' library calls on whole tables in one process per size, `reps` rounds."""
    lib = {"1x": [], big_tag: []}
    for rep in range(reps):
        for tag, path in (("1x", small), (big_tag, big)):
            before = load()
            r = run_child(path)
            r["load"] = f"{before} -> {load()}"
            lib[tag].append(r)
            say(f"library {tag} round {rep + 1}: {r['rows']} rows, stages {r['work_s']:.1f} s, process "
                f"{r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB (load {r['load']}); "
                + ", ".join(f"{k} {v['seconds']:.2f} s/{v['peak_rss_mb']:.0f} MB" for k, v in r["stages"].items()))
    ratio = statistics.median(r["work_s"] for r in lib[big_tag]) / statistics.median(r["work_s"] for r in lib["1x"])
    per_stage = {s: statistics.median(r["stages"][s]["seconds"] for r in lib[big_tag])
                 / statistics.median(r["stages"][s]["seconds"] for r in lib["1x"]) for s in STAGES}
    peak = max(r["peak_rss_mb"] for r in lib[big_tag])
    result = {"runs": lib, "time_ratio": round(ratio, 2), "stage_time_ratio": {k: round(v, 2) for k, v in per_stage.items()},
              "peak_rss_mb": peak, "time_goal_met": ratio <= 12, "memory_goal_met": peak < 2048}
    say(f"library route: {big_tag}/1x time {ratio:.2f}x (goal <= 12x), per stage "
        + ", ".join(f"{k} {v:.1f}x" for k, v in per_stage.items())
        + f"; peak RSS at {big_tag} {peak:.0f} MB (goal < 2048)")
    return result


def replicate(src: Path, dst: Path, factor: int) -> int:
    data = src.read_bytes()
    header, body = data.split(b"\n", 1)
    if not body.endswith(b"\n"):
        body += b"\n"
    with dst.open("wb") as f:
        f.write(header + b"\n")
        for _ in range(factor):
            f.write(body)
    return dst.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--raw", default=str(REAL))
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--no-library", action="store_true")
    ap.add_argument("--before", type=Path, help="a checkout whose command route runs beside this one")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    res = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "nproc": os.cpu_count(),
           "load_start": load(), "factor": args.factor}
    try:
        big = tmp / f"reviews_x{args.factor}.csv"
        size = replicate(Path(args.raw), big, args.factor)
        small = Path(args.raw)
        say(f"nproc {os.cpu_count()}, load {res['load_start']}; {big.name}: {size / 1e6:.0f} MB")
        big_tag = f"{args.factor}x"
        if not args.no_library:
            res["library"] = library_route(small, big, big_tag, args.reps)
        if not args.no_cli:
            sides = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
            for side, checkout in sides.items():
                cli = {}
                for tag, path in (("1x", small), (big_tag, big)):
                    before = load()
                    cli[tag] = run_cli(path, tmp, f"{side}-{tag}", checkout)
                    cli[tag]["load"] = f"{before} -> {load()}"
                    say(f"command {side} {tag}: {cli[tag]['wall_s']:.1f} s wall, stages {cli[tag]['stage_sum_s']:.1f} s "
                        f"({cli[tag]['stages']}), peak RSS {cli[tag]['peak_rss_mb']:.0f} MB (load {cli[tag]['load']})")
                cli["stage_time_ratio"] = round(cli[big_tag]["stage_sum_s"] / cli["1x"]["stage_sum_s"], 2)
                cli["per_stage_ratio"] = {k: round(cli[big_tag]["stages"][k] / cli["1x"]["stages"][k], 2) for k in STAGES}
                cli["wall_ratio"] = round(cli[big_tag]["wall_s"] / cli["1x"]["wall_s"], 2)
                res[f"cli_{side}"] = cli
                say(f"command {side}: {big_tag}/1x stage time {cli['stage_time_ratio']:.2f}x "
                    f"({cli['per_stage_ratio']}), wall {cli['wall_ratio']:.2f}x")
            if args.before:
                same = {tag: {st: res["cli_now"][tag]["digests"][st] == res["cli_before"][tag]["digests"][st] for st in STAGES}
                        for tag in ("1x", big_tag)}
                res["same_bytes"] = same
                say(f"same bytes as before: {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_end"] = load()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
