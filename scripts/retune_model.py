"""Tune the detection of an existing model folder again on the held-out PTC train articles (same weights),
score PTC dev, and rewrite its model.json and MODEL_CARD.md.

    python scripts/retune_model.py [--model DIR] [--ptc ../shared/data/ptc] [--version V] [--rate-floor X|none]
                                    [--calibration out_of_fold|in_sample] [--detectors all|narrow]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.training.build import retune_model_folder
from propscan.pipeline.model import MODEL_DIR
from propscan.ptc import read_articles, read_labels
from propscan.training.tune import ALL, DETECTOR_SETS, IN_SAMPLE, OUT_OF_FOLD, RATE_FLOOR, Rule, rate_floor_arg

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL_DIR)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--version", default=None, help="the new version (default: today's date)")
    ap.add_argument("--rate-floor", default=RATE_FLOOR, type=rate_floor_arg, metavar="X|none",
                    help=f"tune by this rate floor (default {RATE_FLOOR}; none: the rule before the rate floor)")
    ap.add_argument("--calibration", default=OUT_OF_FOLD, choices=(OUT_OF_FOLD, IN_SAMPLE),
                    help=f"the spans the calibration is fitted on (default {OUT_OF_FOLD}; {IN_SAMPLE}: the rule before 2026-12-03)")
    ap.add_argument("--detectors", default=ALL, choices=tuple(DETECTOR_SETS),
                    help=f"the detectors each technique may choose from (default {ALL}; tune.DETECTOR_SETS)")
    args = ap.parse_args()
    train = read_articles(args.ptc / "train/train-articles")
    labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train)
    dev_articles = read_articles(args.ptc / "dev/dev-articles")
    dev = (dev_articles, read_labels(args.ptc / "dev/dev-task-flc-tc.labels", dev_articles))
    retune_model_folder(args.model, train, labels, dev, version=args.version, rule=Rule(args.rate_floor, args.calibration, args.detectors))


if __name__ == "__main__":
    main()
