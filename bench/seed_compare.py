"""The article profile's validation metrics over seeds: the study's own code against the pipeline's.

Both codes compute the same losses per epoch from the same seed (seed s: torch.manual_seed(s)
before each model is built, the shuffle order of train.seed=s), but over 60-90 epochs their float
roundings grow into different models, and glove and regression move by 0.1 in RMSE from seed
to seed. So "at least as good" is a question about means over seeds. This reads every finished
seed kept in bench/results (nothing is run) and prints, per variant and metric, each side's
seeds, means and standard deviations, the difference of the means with Welch's t, the paired
difference over the seeds both sides ran, and a one-sided 95% bound on how much worse the
pipeline can be.

Sources, seed by seed (a seed found twice with different figures is an error):
- article_wall_full.json: seed 0 of both sides;
- article_seeds_current_seed{S}.json, article_seeds_current_seed{S}_{variant}.json: the pipeline
  (`bench/article_seeds.py`'s summaries of single seeds);
- study_seeds*.json: the study's code (`bench/study_seeds.py`).

    python bench/seed_compare.py [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

from common import ROOT

VARIANTS = ("fixed", "variable", "glove", "regression")
LOWER_IS_BETTER = {"rmse": True, "accuracy": False}

# one-sided 95% quantiles of Student's t by degrees of freedom (beyond 30: the normal's)
T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833,
       10: 1.812, 12: 1.782, 15: 1.753, 20: 1.725, 30: 1.697}


def t95(df: float) -> float:
    """The quantile at the largest tabled df not above df (conservative between rows)."""
    below = [d for d in T95 if d <= max(df, 1)]
    return T95[max(below)] if df <= 30 else 1.645


def collect(results: Path) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{side: {variant: {seed: {metric: value}}}}"""
    found: dict[str, dict[str, dict[int, dict[str, float]]]] = {"study": {}, "pipeline": {}}

    def add(side: str, variant: str, seed: int, metrics: dict, source: str) -> None:
        row = {m: float(metrics[m]) for m in ("accuracy", "rmse") if metrics.get(m) is not None}
        if variant == "regression":
            row.pop("accuracy", None)  # a rounded regression's accuracy is not the study's figure
        seen = found[side].setdefault(variant, {})
        if seed in seen and any(abs(seen[seed][m] - row[m]) > 1e-9 for m in row if m in seen[seed]):
            raise SystemExit(f"{source}: {side} {variant} seed {seed} differs from another file's")
        seen.setdefault(seed, {}).update(row)

    full = json.loads((results / "article_wall_full.json").read_text())["sides"]
    for side in ("study", "pipeline"):
        for variant, metrics in full[side]["metrics"].items():
            add(side, variant, 0, metrics, "article_wall_full.json")
    for path in sorted(results.glob("article_seeds_current_seed*.json")):
        seed = int(re.match(r"article_seeds_current_seed(\d+)", path.name).group(1))
        for variant, metrics in json.loads(path.read_text())["metrics"].items():
            add("pipeline", variant, seed, metrics, path.name)
    for path in sorted(results.glob("study_seeds*.json")):
        for seed, run in json.loads(path.read_text())["runs"].items():
            for variant, metrics in run["variants"].items():
                add("study", variant, int(seed), metrics, path.name)
    return found


def compare(study: dict[int, float], pipeline: dict[int, float], lower_is_better: bool) -> dict:
    """Means, Welch's t and the paired difference; 'worse' is the pipeline's side of the metric."""
    s, p = list(study.values()), list(pipeline.values())
    sign = 1.0 if lower_is_better else -1.0  # worse > 0: the pipeline is worse by that much
    out = {"study": s, "pipeline": p, "study_mean": statistics.mean(s), "pipeline_mean": statistics.mean(p)}
    out["worse"] = sign * (out["pipeline_mean"] - out["study_mean"])
    if len(s) > 1 and len(p) > 1:
        vs, vp = statistics.variance(s) / len(s), statistics.variance(p) / len(p)
        se = math.sqrt(vs + vp)
        df = (vs + vp) ** 2 / (vs**2 / (len(s) - 1) + vp**2 / (len(p) - 1)) if vs + vp else 1.0
        out.update(study_sd=statistics.stdev(s), pipeline_sd=statistics.stdev(p), se=se, df=df,
                   welch_t=out["worse"] / se if se else 0.0, worse_95=out["worse"] + t95(df) * se)
    both = sorted(set(study) & set(pipeline))
    if len(both) > 1:
        d = [sign * (pipeline[k] - study[k]) for k in both]
        se = statistics.stdev(d) / math.sqrt(len(d))
        out.update(paired_seeds=both, paired_worse=statistics.mean(d), paired_se=se,
                   paired_worse_95=statistics.mean(d) + t95(len(d) - 1) * se)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--out", help="also write the comparison as JSON here")
    args = ap.parse_args()
    found = collect(Path(args.results))
    table = {}
    print("| variant | metric | study: seeds, mean (sd) | pipeline: seeds, mean (sd) | pipeline worse by "
          "| Welch t | 95% bound | paired: seeds, worse by, 95% bound |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        for metric, lower in LOWER_IS_BETTER.items():
            study = {k: v[metric] for k, v in found["study"].get(variant, {}).items() if metric in v}
            pipeline = {k: v[metric] for k, v in found["pipeline"].get(variant, {}).items() if metric in v}
            if not study or not pipeline:
                continue
            c = compare(study, pipeline, lower)
            table[f"{variant} {metric}"] = {**c, "study_seeds": sorted(study), "pipeline_seeds": sorted(pipeline)}
            side = lambda seeds, mean, sd: f"{len(seeds)}, {mean:.4f}" + (f" ({sd:.4f})" if sd is not None else "")  # noqa: E731
            paired = (f"{len(c['paired_seeds'])}, {c['paired_worse']:+.4f}, {c['paired_worse_95']:+.4f}"
                      if "paired_seeds" in c else "")
            print(f"| {variant} | {metric} | {side(study, c['study_mean'], c.get('study_sd'))} "
                  f"| {side(pipeline, c['pipeline_mean'], c.get('pipeline_sd'))} | {c['worse']:+.4f} "
                  f"| {c.get('welch_t', float('nan')):.2f} | {c.get('worse_95', float('nan')):+.4f} | {paired} |")
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
