"""Two models on the same PTC articles, with a paired bootstrap over articles: how often a resample
of the articles leaves the candidate at least level with the baseline on SI, FLC and TC F1.

    python benchmarks/compare.py CANDIDATE_DIR [--against DIR] [--split dev|heldout] [--resamples 300]

The baseline defaults to the shipped model. ``--split heldout`` scores the held-out PTC train articles
that tuning uses (every 8th, as ``propscan train`` splits them): each model's figure there is tuned on
those very articles. Used for the ship decision of 2026-11-30 (README, "The rule").
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from collections import defaultdict
from pathlib import Path

from propscan.evaluation.evaluate import predict, score
from propscan.pipeline.model import MODEL_DIR, Model
from propscan.ptc import Label, read_articles, read_labels
from propscan.training.train import TrainConfig, held_out

HERE = Path(__file__).resolve().parent


def load_split(ptc: Path, split: str) -> tuple[dict[str, str], list[Label]]:
    if split == "dev":
        arts = read_articles(ptc / "dev/dev-articles")
        return arts, read_labels(ptc / "dev/dev-task-flc-tc.labels", arts)
    arts = read_articles(ptc / "train/train-articles")
    return held_out(arts, read_labels(ptc / "train/train-task-flc-tc.labels", arts), TrainConfig().val_every)


def by_article(rows: list[Label]) -> dict[str, list[Label]]:
    out: dict[str, list[Label]] = defaultdict(list)
    for r in rows:
        out[r.article_id].append(r)
    return out


def figures(sample: list[str], gold: dict, pred: dict, tc: dict) -> tuple[float, float, float]:
    """SI, FLC and TC F1 over a sample of article ids; a repeated article counts as a new one."""
    rows: tuple[list[Label], list[Label], list[Label]] = ([], [], [])
    for i, aid in enumerate(sample):
        for into, src in zip(rows, (gold, pred, tc)):
            into += [dataclasses.replace(r, article_id=f"{aid}#{i}") for r in src.get(aid, [])]
    report = score(*rows)
    return report.si.f1, report.flc.f1, report.tc.f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--against", type=Path, default=MODEL_DIR)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--split", choices=("dev", "heldout"), default="dev")
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    arts, gold = load_split(args.ptc, args.split)
    gold_by, ids = by_article(gold), sorted(arts)
    runs = {}
    for name, folder in (("baseline", args.against), ("candidate", args.candidate)):
        model = Model(folder)
        pred, tc = predict(model, arts, gold)
        runs[name] = (gold_by, by_article(pred), by_article(tc or []))
        si, flc, tc_f1 = figures(ids, *runs[name])
        print(f"{name:<9} {model.name} {model.version}: SI {si:.4f}  FLC {flc:.4f}  TC {tc_f1:.4f}  ({args.split}, {len(ids)} articles)")
    rng = random.Random(args.seed)
    level = [0, 0, 0, 0]
    for _ in range(args.resamples):
        sample = [rng.choice(ids) for _ in ids]
        base, cand = figures(sample, *runs["baseline"]), figures(sample, *runs["candidate"])
        ok = [c >= b for c, b in zip(cand, base)]
        for k, hit in enumerate([*ok, all(ok)]):
            level[k] += hit
    share = [n / args.resamples for n in level]
    print(f"candidate at least level in {args.resamples} resamples: SI {share[0]:.2f}  FLC {share[1]:.2f}  "
          f"TC {share[2]:.2f}  all three {share[3]:.2f}")


if __name__ == "__main__":
    main()
