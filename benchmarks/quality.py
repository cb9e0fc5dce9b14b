"""Quality on PTC dev with the SemEval-2020 Task 11 formulas (SI, FLC, TC, per technique).

    python benchmarks/quality.py [--ptc ../shared/data/ptc] [--model DIR] [--threshold T] [--mode M]

Prints the figures of the shipped (or given) model; ``--mode`` compares decoders
(technique | any+classify | union) on the same token outputs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from propscan.evaluate import evaluate
from propscan.model import Model, MODEL_DIR
from propscan.ptc import read_articles, read_labels

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--model", type=Path, default=MODEL_DIR)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--mode", default=None, help="decoder mode; default: the model's")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    arts = read_articles(args.ptc / "dev/dev-articles")
    gold = read_labels(args.ptc / "dev/dev-task-flc-tc.labels", arts)
    model = Model(args.model)
    t0 = time.perf_counter()
    report = evaluate(model, arts, gold, threshold=args.threshold, mode=args.mode)
    secs = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
        return
    print(f"model {model.name} {model.version}, decoder {args.mode or model.decoding.get('mode')}, "
          f"threshold {'tuned' if args.threshold is None else args.threshold}; PTC dev, {len(arts)} articles, {secs:.1f}s")
    for name, prf in (("SI", report.si), ("FLC", report.flc), ("TC", report.tc)):
        print(f"{name:<4} P {prf.precision:.4f}  R {prf.recall:.4f}  F1 {prf.f1:.4f}  (pred {prf.n_pred}, gold {prf.n_gold})")
    print("\nper technique:            FLC P   FLC R  FLC F1   TC F1  gold")
    for tech, prf in report.flc_by_technique.items():
        tc = report.tc_by_technique[tech].f1
        print(f"  {tech[:34]:<34} {prf.precision:.3f}  {prf.recall:.3f}  {prf.f1:.3f}  {tc:.3f}  {prf.n_gold}")


if __name__ == "__main__":
    main()
