"""Average adapter packages (runs of one recipe in other data orders, each a model folder with
package.json) into one package: a weight soup, as `propscan train` makes of a recipe with members.
Then refit its span classifier and tune it, as that would:

    python scripts/average_packages.py OUT --version V PACKAGE PACKAGE [...]
    python scripts/refit_span_head.py OUT --articles PTC/train/train-articles --labels PTC/train/train-task-flc-tc.labels
    python scripts/retune_model.py --model OUT --version V
"""

from __future__ import annotations

import argparse
from pathlib import Path

from propscan.errors import ModelError
from propscan.training.export import average_packages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the soup's folder (created)")
    ap.add_argument("packages", type=Path, nargs="+", help="model folders holding adapter packages")
    ap.add_argument("--version", required=True)
    args = ap.parse_args()
    if len(args.packages) < 2:
        ap.error("give two packages or more")
    try:
        average_packages(args.packages, args.out, args.version)
    except (ValueError, FileNotFoundError, ModelError) as e:
        ap.exit(2, f"average_packages.py: error: {e}\n")
    print(f"averaged {len(args.packages)} packages into {args.out}")


if __name__ == "__main__":
    main()
