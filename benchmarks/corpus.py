"""Corpus throughput: ``propscan corpus run`` in one process vs the Ray engine on a local Ray, same corpus.

    python benchmarks/corpus.py [--docs 600] [--ptc ../shared/data/ptc/dev/dev-articles] [--cpus 2]

The corpus: the PTC dev articles (full news articles, if ../shared is there) plus short synthetic JSONL
articles (2-4 sentences) up to ``--docs``. Both engines run as the real CLI in fresh processes. Printed
per engine: wall time end to end (process start, model load, Ray start-up included), documents per
second end to end, and documents per second as the run itself reports it (analysis only). The Ray shards
are imported and compared with the local database: the results must be identical (scores to 1e-6).

On the 2-core development machine the local engine already uses both cores (onnxruntime threads), so
Ray cannot be faster there: it pays for its start-up and its per-actor model loads. It pays off on more
cores and on a cluster (docs/ray.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PTC = HERE.parents[1] / "shared" / "data" / "ptc" / "dev" / "dev-articles"

SENTENCES = [
    "The council's reckless, shameful vote will gut our {n} services.",
    "These corrupt traitors are destroying our great city!",
    "Every true patriot knows the {n} plan is what our nation stands for.",
    "Residents met on {d} to discuss the {n} budget.",
    "The vote on the {n} proposal passed {a} to {b}.",
    "Can we really believe a mayor who changed his story twice?",
    "A public hearing on the {n} contract is scheduled for {d}.",
    "If the {n} plan passes, our streets will never be safe again.",
]
NOUNS = ["bridge", "school", "water", "transit", "housing", "library", "harbour", "parking"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def build(folder: Path, docs: int, ptc: Path) -> int:
    n_ptc = 0
    if ptc.is_dir():
        (folder / "ptc").mkdir(parents=True)
        for f in sorted(ptc.glob("article*.txt"))[: max(0, docs // 8)]:
            shutil.copyfile(f, folder / "ptc" / f.name)
            n_ptc += 1
    rnd = random.Random(5)
    (folder / "feeds").mkdir(parents=True, exist_ok=True)
    with open(folder / "feeds" / "news.jsonl", "w", encoding="utf-8") as fh:
        for i in range(docs - n_ptc):
            text = " ".join(
                rnd.choice(SENTENCES).format(n=rnd.choice(NOUNS), d=rnd.choice(DAYS), a=rnd.randint(2, 9), b=rnd.randint(0, 5))
                for _ in range(rnd.randint(2, 4))
            )
            fh.write(json.dumps({"id": f"b{i}", "text": text, "site": ["Bugle", "Planet", "Gazette"][i % 3],
                                 "date": f"2024-{1 + i % 6:02d}-{1 + i % 28:02d}"}) + "\n")
    return n_ptc


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return secs, done.stderr


def reported_rate(stderr: str) -> float:
    m = re.search(r"\(([\d.]+) docs/s\)", stderr)
    return float(m.group(1)) if m else float("nan")


def spans(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute('SELECT doc_id, sha256, technique, start, "end", score FROM span_view ORDER BY 1, 2, 4, 5, 3').fetchall()
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--ptc", type=Path, default=PTC)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray (and its actors)")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")}
    py = [sys.executable, "-m", "propscan", "corpus"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_ptc = build(tmp / "in", args.docs, args.ptc)
        print(f"corpus: {args.docs} documents ({n_ptc} PTC articles, {args.docs - n_ptc} short synthetic), {os.cpu_count()} CPUs")
        local_s, local_err = run(py + ["run", str(tmp / "in"), "--db", str(tmp / "local.sqlite")], env)
        ray_s, ray_err = run(
            py + ["run", str(tmp / "in"), "--engine", "ray", "--shards", str(tmp / "shards"), "--num-cpus", str(args.cpus),
                  "--concurrency", str(args.cpus), "--batch", str(args.batch)],
            env,
        )
        run(py + ["import", "--db", str(tmp / "ray.sqlite"), str(tmp / "shards")], env)
        a, b = spans(tmp / "local.sqlite"), spans(tmp / "ray.sqlite")
        same = len(a) == len(b) and all(x[:5] == y[:5] and abs(x[5] - y[5]) <= 1e-6 for x, y in zip(a, b))
        print(f"{'engine':<28}{'wall s':>9}{'docs/s (end to end)':>22}{'docs/s (run)':>15}")
        print(f"{'local (1 process)':<28}{local_s:>9.1f}{args.docs / local_s:>22.1f}{reported_rate(local_err):>15.1f}")
        print(f"{f'ray (local, {args.cpus} actors)':<28}{ray_s:>9.1f}{args.docs / ray_s:>22.1f}{reported_rate(ray_err):>15.1f}")
        print(f"identical results: {'yes' if same else 'NO'} ({len(a)} spans)")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
