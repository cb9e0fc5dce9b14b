"""Refit a trained checkpoint's span classifier on frozen inputs (TrainConfig.span_refit_epochs), in
place; then finish it into a model folder as `propscan train` would (scripts/finish_checkpoint.py).

    python scripts/refit_span_head.py CHECKPOINT --articles PTC/train/train-articles \
        --labels PTC/train/train-task-flc-tc.labels --epochs 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.ptc import read_articles, read_labels
from propscan.training.train import refit_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--articles", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()
    articles = read_articles(args.articles)
    refit_checkpoint(args.checkpoint, articles, read_labels(args.labels, articles), args.epochs, args.lr,
                     log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
