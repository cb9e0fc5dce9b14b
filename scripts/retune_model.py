"""Tune the detection of an existing model folder again on the held-out PTC train articles (same weights),
score PTC dev, and rewrite its model.json and MODEL_CARD.md.

    python scripts/retune_model.py [--model DIR] [--ptc ../shared/data/ptc] [--version V] [--rate-floor X|none]
                                    [--calibration out_of_fold|out_of_fold_cutoffs|in_sample]
                                    [--detectors all|narrow] [--repeaters local|pooled] [--folds DIR ...]

``--folds``: fold networks of the model's recipe (``propscan train --val-fold J``, one per other eighth
of PTC train); detection is then tuned on every train article, each read by the network that held it
out (src/propscan/training/stacking.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.errors import ModelError
from propscan.training.build import retune_model_folder
from propscan.pipeline.model import MODEL_DIR
from propscan.ptc import read_articles, read_labels
from propscan.training.tune import Rule, add_rule_options, rule_from

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL_DIR)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--version", default=None, help="the new version (default: today's date)")
    add_rule_options(ap, f"today's rule, {Rule().to_json()}")
    ap.add_argument("--folds", type=Path, nargs="+", default=[], metavar="DIR", help="fold networks of the model's recipe")
    args = ap.parse_args()
    train = read_articles(args.ptc / "train/train-articles")
    labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train)
    dev_articles = read_articles(args.ptc / "dev/dev-articles")
    dev = (dev_articles, read_labels(args.ptc / "dev/dev-task-flc-tc.labels", dev_articles))
    try:
        retune_model_folder(args.model, train, labels, dev, version=args.version, rule=rule_from(args, Rule()), folds=args.folds)
    except ModelError as e:  # a model or fold network that cannot be read or does not fit
        ap.exit(2, f"retune_model.py: error: {e}\n")


if __name__ == "__main__":
    main()
