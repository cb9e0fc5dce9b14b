"""Refit a span classifier on frozen inputs, in place.

A trained checkpoint (TrainConfig.span_refit_epochs): its inputs come from the checkpoint's torch
network; finish it afterwards into a model folder as `propscan train` would (scripts/finish_checkpoint.py).
A model folder (one holding model.json; its checkpoint need not exist): its inputs come from the shipped
runtime network (int8 for the fast model), only heads.npz changes; tune it again afterwards
(scripts/retune_model.py). Work on a copy: the folder is changed in place.

    python scripts/refit_span_head.py CHECKPOINT_OR_MODEL_FOLDER --articles PTC/train/train-articles \
        --labels PTC/train/train-task-flc-tc.labels --epochs 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.ptc import read_articles, read_labels
from propscan.training.refit import refit_heads
from propscan.training.train import refit_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="a training checkpoint, or a model folder (model.json)")
    ap.add_argument("--articles", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()
    articles = read_articles(args.articles)
    labels = read_labels(args.labels, articles)
    refit = refit_heads if (args.folder / "model.json").is_file() else refit_checkpoint
    refit(args.folder, articles, labels, args.epochs, args.lr, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
