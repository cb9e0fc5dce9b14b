"""Two models on the same PTC articles, with a paired bootstrap over articles: how often a resample
of the articles leaves the candidate at least level with the baseline on each figure (SI, FLC and TC
F1, the mean per-technique FLC F1, and the calibration error, where lower is level or better).

    python benchmarks/compare.py CANDIDATE_DIR [--against DIR] [--split dev|heldout] [--cross-fitted]
                                 [--partitions N] [--folds DIR ...] [--against-folds DIR ...] [--resamples 300]

The baseline defaults to the shipped fast model. Without ``--cross-fitted`` each model is scored with
its shipped settings, which were tuned on PTC dev too, so those dev figures are in sample.
``--cross-fitted`` scores dev as benchmarks/quality.py does (each fifth of dev with settings tuned
without it, by the tuning rule each model records): the figures the ship rule compares, and the
bootstrap then says how much 75 articles can tell the two apart (docs/experiments.md, 2026-12-03,
third session). ``--partitions N`` averages each figure over N partitions of dev into fifths (the
calibration error moves with the partition far more than its article-sampling noise suggests:
docs/design.md), and the bootstrap then compares those averages. ``--split heldout`` scores the held-out PTC train articles that tuning uses (every
8th, as ``propscan train`` splits them): each model's figure there is tuned on those very articles.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from collections import defaultdict
from itertools import repeat
from pathlib import Path

from propscan.evaluation.evaluate import FIVE as NAMES, Report, mean_five, predict, score
from propscan.pipeline.model import Model, locate
from propscan.ptc import Label, read_articles, read_labels
from propscan.errors import ModelError
from propscan.training.stacking import fold_networks, tuning_set
from propscan.training.train import recorded_held_out
from propscan.training.tune import Rule, cross_fit_predictions

HERE = Path(__file__).resolve().parent
LOWER_IS_BETTER = {"ECE"}


def load_split(ptc: Path, split: str, train_config: dict | None = None) -> tuple[dict[str, str], list[Label]]:
    """PTC dev, or the train articles held out by ``train_config`` (a model.json's; None: today's default)."""
    if split == "dev":
        arts = read_articles(ptc / "dev/dev-articles")
        return arts, read_labels(ptc / "dev/dev-task-flc-tc.labels", arts)
    arts = read_articles(ptc / "train/train-articles")
    return recorded_held_out(arts, read_labels(ptc / "train/train-task-flc-tc.labels", arts), train_config or {})


def by_article(rows: list[Label], scores: list[float] | None = None) -> dict[str, list[tuple[Label, float]]]:
    """Rows grouped by article, each with its confidence (NaN for rows without one: gold and TC rows)."""
    out: dict[str, list[tuple[Label, float]]] = defaultdict(list)
    for r, s in zip(rows, scores if scores is not None else repeat(float("nan"))):
        out[r.article_id].append((r, s))
    return out


def report_of(sample: list[str], gold: dict, pred: dict, tc: dict) -> Report:
    """The scores over a sample of article ids; a repeated article counts as a new one."""
    rows: tuple[list[Label], list[Label], list[Label]] = ([], [], [])
    conf: list[float] = []
    for i, aid in enumerate(sample):
        for into, src in zip(rows, (gold, pred, tc)):
            into += [dataclasses.replace(r, article_id=f"{aid}#{i}") for r, _ in src.get(aid, [])]
        conf += [s for _, s in pred.get(aid, [])]
    return score(*rows, scores=conf)


def figures(sample: list[str], runs: list[tuple[dict, dict, dict]]) -> tuple[float, ...]:
    """The five figures over a sample of article ids, averaged over the runs (one per partition of dev)."""
    return mean_five([report_of(sample, *run) for run in runs])


def predictions(model: Model, split: tuple[dict[str, str], list[Label]], ptc: Path, cross_fitted: bool,
                tuning: tuple | None = None, partition: int = 0, cache: dict | None = None) -> tuple[dict, dict]:
    """The model's FLC and TC rows on the split's articles, grouped by article (by_article). Cross-fitted
    (dev dealt into fifths by ``partition``), the tuning articles are those the model's own training held
    out (its val_every and val_fold), or ``tuning`` (stacking.tuning_set: the model with its fold
    networks, and the train articles they read)."""
    scores: list[float] = []
    if cross_fitted:
        tuner, heldout = tuning or (model, load_split(ptc, "heldout", model.config.get("train_config")))
        pred, scores, tc = cross_fit_predictions(tuner, heldout, split, log=lambda m: None, cache=cache if cache is not None else {},
                                                 rule=Rule.recorded(model.config), partition=partition)
    else:
        pred, tc = predict(model, *split, scores=scores)
    return by_article(pred, scores), by_article(tc or [])


def level_shares(runs: dict, ids: list[str], resamples: int, seed: int) -> list[float]:
    """Per figure, then for all of them at once: the share of resamples with the candidate at least level."""
    rng = random.Random(seed)
    level = [0] * (len(NAMES) + 1)
    for _ in range(resamples):
        sample = [rng.choice(ids) for _ in ids]
        base, cand = figures(sample, runs["baseline"]), figures(sample, runs["candidate"])
        ok = [c <= b if n in LOWER_IS_BETTER else c >= b for n, c, b in zip(NAMES, cand, base)]
        for k, hit in enumerate([*ok, all(ok)]):
            level[k] += hit
    return [n / resamples for n in level]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidate", help="a model folder, or fast / accurate")
    ap.add_argument("--against", default="fast", help="a model folder, or fast (default) / accurate")
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--split", choices=("dev", "heldout"), default="dev")
    ap.add_argument("--cross-fitted", action="store_true", help="score dev cross-fitted, as benchmarks/quality.py does")
    ap.add_argument("--folds", type=Path, nargs="+", default=[], metavar="DIR",
                    help="fold networks of the candidate's recipe, when it was tuned with them (scripts/retune_model.py --folds)")
    ap.add_argument("--against-folds", type=Path, nargs="+", default=[], metavar="DIR", help="the same for the baseline")
    ap.add_argument("--partitions", type=int, default=1, metavar="N",
                    help="cross-fitted: average over N partitions of dev into fifths (the first is the model card's; "
                         "the calibration error moves with the partition, docs/design.md)")
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.cross_fitted and args.split != "dev":
        ap.error("--cross-fitted scores PTC dev; it cannot be used with --split heldout")
    if args.partitions < 1 or (args.partitions > 1 and not args.cross_fitted):
        ap.error("--partitions needs --cross-fitted and a number >= 1")
    if (args.folds or args.against_folds) and not args.cross_fitted:
        ap.error("--folds and --against-folds change the cross-fitted tuning; they need --cross-fitted")

    split = load_split(args.ptc, args.split)
    gold_by, ids = by_article(split[1]), sorted(split[0])
    runs = {}
    models = {"baseline": Model(locate(args.against)), "candidate": Model(locate(args.candidate))}
    tuning = {"baseline": None, "candidate": None}
    if args.folds or args.against_folds:  # before any work: a fold network that does not fit is refused in one line
        train = read_articles(args.ptc / "train/train-articles")
        labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train)
        try:
            for name, folders in (("baseline", args.against_folds), ("candidate", args.folds)):
                if folders:
                    nets = fold_networks(folders, train, labels, models[name].config)
                    tuning[name] = tuning_set(models[name], nets, train, labels)
        except ModelError as e:
            ap.exit(2, f"compare.py: error: {e}\n")
    how = f"cross-fitted, mean of {args.partitions} partitions" if args.partitions > 1 else "cross-fitted" if args.cross_fitted else "shipped settings"
    for name, model in models.items():
        cache: dict = {}  # the network runs once for all partitions
        runs[name] = [(gold_by, *predictions(model, split, args.ptc, args.cross_fitted, tuning[name], k, cache))
                      for k in range(args.partitions)]
        reports = [report_of(ids, *run) for run in runs[name]]
        floor = sum(r.ece_floor()[0] for r in reports) / len(reports)
        shown = "  ".join(f"{n} {v:.4f}" for n, v in zip(NAMES, mean_five(reports)))
        print(f"{name:<9} {model.name} {model.version}: {shown}  ({args.split}, {how}; "
              f"ECE of a perfectly calibrated model with these confidences {floor:.4f})")
    share = level_shares(runs, ids, args.resamples, args.seed)
    print(f"candidate at least level in {args.resamples} resamples of {len(ids)} articles: "
          + "  ".join(f"{n} {s:.2f}" for n, s in zip((*NAMES, "all five"), share)))


if __name__ == "__main__":
    main()
