r"""Make an adapter package int8 with smoothing (SmoothQuant; propscan.training.smoothing), in place:
scales measured on the first training articles, smoothing.npz written, model.onnx and the probe rebuilt.
Its network changes: refit its span classifier on it and tune it again afterwards
(scripts/refit_span_head.py, scripts/retune_model.py). Work on a copy.

    python scripts/smooth_package.py PACKAGE --articles PTC/train/train-articles [--alpha 0.8] [--fp32 'layer\.\d+/output/dense']

--fp32 REGEX (repeatable) keeps the weight products whose node names match REGEX in fp32: the accurate
model keeps each block's feed-forward output product ('layer\.\d+/output/dense'), where int8 cost it most.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.ptc import read_articles
from propscan.training.smoothing import ALPHA, CALIBRATION_ARTICLES, smooth_package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", type=Path)
    ap.add_argument("--articles", type=Path, required=True, help="training articles (never the PTC test set)")
    ap.add_argument("--alpha", type=float, default=ALPHA)
    ap.add_argument("--fp32", action="append", default=[], metavar="REGEX",
                    help="keep the weight products whose node names match REGEX in fp32 (repeatable)")
    args = ap.parse_args()
    articles = read_articles(args.articles)
    texts = [articles[k] for k in sorted(articles)[:CALIBRATION_ARTICLES]]
    try:
        manifest = smooth_package(args.package, texts, args.alpha, args.fp32)
    except ValueError as e:
        ap.error(str(e))
    kept = len(manifest.get("fp32_products", []))
    print(f"{args.package}: int8 with smoothing {manifest['smoothing']}, {kept} products kept in fp32")


if __name__ == "__main__":
    main()
