"""Quality on PTC dev with the SemEval-2020 Task 11 formulas (SI, FLC, TC, per technique), and the
calibration of the span confidences (expected calibration error over 10 bins, reliability table), beside
the error a perfectly calibrated model with the same confidences would show by chance on this many spans
(calibrate.ece_floor: the noise floor below which a lower ECE says nothing).

    python benchmarks/quality.py [--ptc ../shared/data/ptc] [--model fast|accurate|DIR] [--min-confidence P]
                                 [--folds DIR ...] [--rate-floor X|none] [--calibration out_of_fold|out_of_fold_cutoffs|in_sample]
                                 [--detectors all|narrow] [--repeaters local|pooled] [--partitions N]

A span counts as right for calibration when annotators marked an overlapping span of its technique.
When the model's detection was tuned with PTC dev too (model.json: tuned_on.dev_articles), the
figures printed first are cross-fitted, recomputed here: each fifth of dev is scored with settings
tuned on the held-out train articles and the other four fifths (training.tune.cross_fitted), as an
unseen article would be, by the tuning rule the model records (model.json: tuning_rule; --rate-floor,
--calibration and --detectors override it, to compare models tuned by different rules). How dev is
dealt into fifths is arbitrary and moves the figures (the calibration error most), so they are
computed for --partitions partitions and averaged; the first partition is the model card's, shown in
detail. The shipped settings' own dev figures follow, labelled in sample.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from propscan.evaluation.evaluate import FIVE, evaluate, mean_five
from propscan.pipeline.model import Model, locate
from propscan.ptc import read_articles, read_labels
from propscan.errors import ModelError
from propscan.training.stacking import fold_networks, tuning_set
from propscan.training.train import recorded_held_out
from propscan.training.tune import PARTITIONS, Rule, add_rule_options, cross_fitted_partitions, rule_from, token_outputs

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--model", default=None, help="fast (default), accurate, or a model folder")
    ap.add_argument("--min-confidence", type=float, default=None, help="default: the cutoffs tuned per technique")
    ap.add_argument("--folds", type=Path, nargs="+", default=[], metavar="DIR",
                    help="fold networks of the model's recipe, when it was tuned with them (scripts/retune_model.py --folds)")
    add_rule_options(ap, "the model's own rule (model.json: tuning_rule); given, to compare models tuned by different rules")
    ap.add_argument("--partitions", type=int, default=PARTITIONS, metavar="N",
                    help=f"cross-fitted figures over N partitions of dev into fifths, and their mean (default {PARTITIONS})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    if args.partitions < 1:
        ap.error("--partitions must be at least 1")
    arts = read_articles(args.ptc / "dev/dev-articles")
    gold = read_labels(args.ptc / "dev/dev-task-flc-tc.labels", arts)
    model = Model(locate(args.model))
    config = model.config
    fair = args.min_confidence is None and config.get("tuned_on", {}).get("dev_articles")
    if args.folds and not fair:
        ap.error("--folds changes the cross-fitted tuning; there is none with --min-confidence or for a model not tuned on dev")
    folds = []
    if fair:
        train = read_articles(args.ptc / "train/train-articles")
        labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train)
        try:  # before any work: a fold network that cannot be read or does not fit is refused in one line
            folds = fold_networks(args.folds, train, labels, config) if args.folds else []
        except ModelError as e:
            ap.exit(2, f"quality.py: error: {e}\n")
    t0 = time.perf_counter()
    cache: dict = {}  # the network's outputs, shared with the cross-fitting below
    in_sample = evaluate(model, arts, gold, min_confidence=args.min_confidence, outputs=token_outputs(model, arts, cache))
    secs = time.perf_counter() - t0
    report = in_sample
    if fair:
        heldout = recorded_held_out(train, labels, config["train_config"])
        tuner = model
        if folds:  # tuned with fold networks (scripts/retune_model.py --folds): the train articles out of fold
            tuner, heldout = tuning_set(model, folds, train, labels)
        # by the tuning rule the model was tuned with, but for what the command line overrides
        rule = rule_from(args, Rule.recorded(config))
        partitions = cross_fitted_partitions(tuner, heldout, (arts, gold), log=lambda m: None, cache=cache, rule=rule,
                                             partitions=args.partitions)
        report = partitions[0]
    floor = report.ece_floor()
    if args.json:
        print(json.dumps({**report.as_dict(), "ece_floor": dict(zip(("mean", "p95"), floor)),
                          **({"partitions": [dict(zip(FIVE, r.five())) for r in partitions],
                              "partition_mean": dict(zip(FIVE, mean_five(partitions))),
                              "in_sample": in_sample.as_dict()} if fair else {})}, indent=1))
        return
    print(f"model {model.name} {model.version}, minimum confidence "
          f"{'tuned per technique' if args.min_confidence is None else args.min_confidence}; PTC dev, {len(arts)} articles, "
          f"{secs:.1f}s with the shipped settings")
    if fair:
        print(f"dev took part in the tuning: cross-fitted figures (each fifth of dev scored with settings tuned on the "
              f"{len(heldout[0])} {'train articles read out of fold' if folds else 'held-out train articles'} and the other four fifths)")
        print(f"\n{len(partitions)} partitions of dev into fifths:   " + "  ".join(f"{n:>6}" for n in FIVE))
        for k, r in enumerate(partitions):
            print(f"  partition {k}{' (the model card)' if k == 0 else '':<17}    " + "  ".join(f"{v:.4f}" for v in r.five()))
        print(f"  mean{'':<28}" + "  ".join(f"{v:.4f}" for v in mean_five(partitions)))
        print("\npartition 0 in detail:")
    _figures(report)
    print(f"\ncalibration: expected calibration error {report.ece:.4f} (10 bins, {len(report.confidences)} spans); "
          f"a perfectly calibrated model with these confidences would show {floor[0]:.4f} by chance "
          f"(95th percentile {floor[1]:.4f})")
    _table(report.reliability)
    if fair:
        print("\nthe shipped settings on dev, in sample (dev chose them; not a fair figure):")
        print(f"  SI F1 {in_sample.si.f1:.4f}  FLC F1 {in_sample.flc.f1:.4f}  TC F1 {in_sample.tc.f1:.4f}  "
              f"mean technique FLC F1 {in_sample.mean_technique_f1:.4f}  ECE {in_sample.ece:.4f}")


def _figures(report) -> None:
    for name, prf in (("SI", report.si), ("FLC", report.flc), ("TC", report.tc)):
        print(f"{name:<4} P {prf.precision:.4f}  R {prf.recall:.4f}  F1 {prf.f1:.4f}  (pred {prf.n_pred}, gold {prf.n_gold})")
    print("\nper technique:            FLC P   FLC R  FLC F1   TC F1  gold")
    for tech, prf in report.flc_by_technique.items():
        tc = report.tc_by_technique[tech].f1
        print(f"  {tech[:34]:<34} {prf.precision:.3f}  {prf.recall:.3f}  {prf.f1:.3f}  {tc:.3f}  {prf.n_gold}")
    print(f"  {'mean of the 14 (unweighted)':<34}               {report.mean_technique_f1:.3f}")


def _table(rows) -> None:
    print("  confidence    spans  mean confidence  share right")
    for low, high, n, conf, acc in rows:
        print(f"  {low:.1f}-{high:.1f}    {n:6d}  {conf:15.3f}  {acc:11.3f}")


if __name__ == "__main__":
    main()
