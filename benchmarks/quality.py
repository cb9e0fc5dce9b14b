"""Quality on PTC dev with the SemEval-2020 Task 11 formulas (SI, FLC, TC, per technique), and the
calibration of the span confidences (expected calibration error over 10 bins, reliability table).

    python benchmarks/quality.py [--ptc ../shared/data/ptc] [--model fast|accurate|DIR] [--min-confidence P]

A span counts as right for calibration when annotators marked an overlapping span of its technique.
When the model's calibration was fitted with PTC dev (model.json: calibration_fit.fitted_on), the
calibration printed is out of fold, recomputed here: each fifth of dev is scored with maps fitted on
the held-out train articles and the other four fifths (training.tune.calibrate_with_dev); the
in-sample figure follows it, labelled so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from propscan.evaluation.evaluate import evaluate
from propscan.pipeline.model import Model, locate
from propscan.ptc import read_articles, read_labels
from propscan.training.train import held_out
from propscan.training.tune import calibrate_with_dev

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--model", default=None, help="fast (default), accurate, or a model folder")
    ap.add_argument("--min-confidence", type=float, default=None, help="default: the cutoffs tuned per technique")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    arts = read_articles(args.ptc / "dev/dev-articles")
    gold = read_labels(args.ptc / "dev/dev-task-flc-tc.labels", arts)
    model = Model(locate(args.model))
    t0 = time.perf_counter()
    report = evaluate(model, arts, gold, min_confidence=args.min_confidence)
    secs = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
        return
    print(f"model {model.name} {model.version}, minimum confidence "
          f"{'tuned per technique' if args.min_confidence is None else args.min_confidence}; PTC dev, {len(arts)} articles, {secs:.1f}s")
    for name, prf in (("SI", report.si), ("FLC", report.flc), ("TC", report.tc)):
        print(f"{name:<4} P {prf.precision:.4f}  R {prf.recall:.4f}  F1 {prf.f1:.4f}  (pred {prf.n_pred}, gold {prf.n_gold})")
    print("\nper technique:            FLC P   FLC R  FLC F1   TC F1  gold")
    for tech, prf in report.flc_by_technique.items():
        tc = report.tc_by_technique[tech].f1
        print(f"  {tech[:34]:<34} {prf.precision:.3f}  {prf.recall:.3f}  {prf.f1:.3f}  {tc:.3f}  {prf.n_gold}")
    print(f"  {'mean of the 14 (unweighted)':<34}               {report.mean_technique_f1:.3f}")
    config = model.config
    if "fitted_on" in config.get("calibration_fit", {}) and args.min_confidence is None:
        train = read_articles(args.ptc / "train/train-articles")
        heldout = held_out(train, read_labels(args.ptc / "train/train-task-flc-tc.labels", train), config["train_config"]["val_every"])
        fit = calibrate_with_dev(model, config, heldout, (arts, gold), log=lambda m: None)["calibration_fit"]
        print(f"\ncalibration, out of fold (maps fitted on the {len(heldout[0])} held-out train articles and the other "
              f"four fifths of dev): expected calibration error {fit['dev_ece_out_of_fold']:.4f} (10 bins)")
        _table(fit["dev_reliability_out_of_fold"])
        print(f"in sample (dev was in the fit; not a fair figure): {report.ece:.4f}")
        return
    print(f"\ncalibration: expected calibration error {report.ece:.4f} (10 bins, {report.flc.n_pred} spans)")
    _table(report.reliability)


def _table(rows) -> None:
    print("  confidence    spans  mean confidence  share right")
    for low, high, n, conf, acc in rows:
        print(f"  {low:.1f}-{high:.1f}    {n:6d}  {conf:15.3f}  {acc:11.3f}")


if __name__ == "__main__":
    main()
