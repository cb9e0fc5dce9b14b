"""Finish a training checkpoint into a model folder as `propscan train` does after training: export
(int8, or fp32 with --no-quantize), tuning on the held-out PTC train articles and dev (dev figures
cross-fitted), model.json and MODEL_CARD.md. For a run stopped before its end (`stop_after`), or a
checkpoint changed afterwards (scripts/refit_span_head.py). A checkpoint trained on train + dev (a
final model) is finished with --dev-figures-from, the train-only run's model folder (docs/training.md).

    python scripts/finish_checkpoint.py CHECKPOINT OUT [--ptc ../shared/data/ptc] [--version V] [--no-quantize]
        [--dev-figures-from TRAIN_ONLY_MODEL] [--rate-floor X|none] [--calibration out_of_fold|out_of_fold_cutoffs|in_sample]
        [--detectors all|narrow] [--repeaters local|pooled]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from propscan.ptc import read_articles, read_labels
from propscan.training.build import finish_model_folder
from propscan.training.train import TrainConfig
from propscan.training.tune import Rule, add_rule_options, rule_from

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--version", default=None, help="the version (default: today's date)")
    ap.add_argument("--no-quantize", action="store_true", help="keep the network in fp32")
    ap.add_argument("--dev-figures-from", type=Path, default=None, help="the checkpoint was trained on train + dev")
    add_rule_options(ap, f"today's rule, {Rule().to_json()}")
    args = ap.parse_args()
    train = read_articles(args.ptc / "train/train-articles")
    labels = read_labels(args.ptc / "train/train-task-flc-tc.labels", train)
    dev_articles = read_articles(args.ptc / "dev/dev-articles")
    dev = (dev_articles, read_labels(args.ptc / "dev/dev-task-flc-tc.labels", dev_articles))
    cfg = TrainConfig(**json.loads((args.checkpoint / "train_config.json").read_text()))
    sources = None
    if args.dev_figures_from:  # dev was training data: no dev scoring, its figures borrowed
        train, labels, dev, sources = {**train, **dev[0]}, labels + dev[1], None, ["PTC v2 train", "PTC v2 dev"]
    args.out.mkdir(parents=True, exist_ok=True)
    finish_model_folder(args.checkpoint, args.out, train, labels, cfg, dev=dev, quantize=not args.no_quantize,
                        version=args.version, log=lambda m: print(m, flush=True), sources=sources,
                        dev_from=args.dev_figures_from, rule=rule_from(args, Rule()))


if __name__ == "__main__":
    main()
