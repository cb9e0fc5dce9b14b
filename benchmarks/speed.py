"""Speed on the 90 PTC test articles, per model side by side: end to end (CLI start-up included),
tokens/s, peak RSS of the analysing process, and, in the same run, the same network in PyTorch fp32
so the runtime's gain is a measured ratio.

    python benchmarks/speed.py [--ptc ../shared/data/ptc] [--models fast accurate] [--threads 2] [--no-torch] [--rounds 1]

End to end = ``propscan analyze <test-articles> --model M --format semeval -o FILE`` in a fresh process
(the accurate model built into the cache beforehand, so its one-time build is not timed). By default
both models are timed where the accurate one is installed (``make install-accurate``). PyTorch needs the
train extra (``make install-train``): the same architecture initialised from the base encoder, which
runs at the same speed as the trained weights (speed does not depend on the weight values).
``--models`` also takes model folders.

A 2-core machine's pace drifts by 10-30% within a day, so one run compares little. ``--rounds N`` runs the
end-to-end pass N times, every model once a round in turn (the order reversed every other round), and
prints the median articles/s with the range: models compared in one run then meet the same drift.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# Runs the CLI and writes the process's own peak RSS: VmHWM belongs to its memory map, while ru_maxrss
# carries over from the parent through fork and exec (this benchmark's own process grows to 600 MB).
PEAK = ("import re, runpy, sys\n"
        "sys.argv = ['propscan', *sys.argv[2:]]\n"
        "try:\n    runpy.run_module('propscan', run_name='__main__')\n"
        "finally:\n    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "    open(PEAK_FILE, 'w').write(hwm)\n")


def end_to_end(articles: Path, threads: int, model: str) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out, peak = Path(tmp) / "pred.labels", Path(tmp) / "peak"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PROPSCAN_THREADS=str(threads))
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", f"PEAK_FILE = {str(peak)!r}\n" + PEAK, "-", "analyze", str(articles),
             "--format", "semeval", "-o", str(out), "--model", model],
            check=True, env=env, stderr=subprocess.DEVNULL,
        )
        secs = time.perf_counter() - t0
        rows = sum(1 for _ in out.open())
        peak_mb = int(peak.read_text()) / 1024
    return secs, peak_mb, rows


def windows_for(model, texts: list[str]):
    """The model inputs exactly as the runtime builds them (model.BATCH windows per call), per text."""
    from propscan.pipeline import encoding
    from propscan.pipeline.model import BATCH

    per_text, n_tokens = [], 0
    for text in texts:
        enc = encoding.encode(model.tokenizer, text)
        n_tokens += len(enc)
        wins = model.windows(len(enc))
        per_text.append([encoding.batch_windows(enc.ids, wins[k : k + BATCH], model.cls_id, model.sep_id, model.pad_id)
                         for k in range(0, len(wins), BATCH)])
    return per_text, n_tokens


def onnx_throughput(model, per_text) -> float:
    """As the runtime runs them: a text's windows side by side on the model's threads, and as many
    texts at once as the CLI analyses (analyze.in_order), at most ``threads`` calls running."""
    from propscan.pipeline.analyze import in_order

    t0 = time.perf_counter()
    for _, done in in_order(lambda batches: model.map_calls(lambda b: model.run_windows(*b), batches), per_text, model.threads):
        done.result()
    return time.perf_counter() - t0


def torch_throughput(batches, encoder: str, threads: int) -> float | None:
    try:
        import torch

        from propscan.training.train import TrainConfig, build_model
    except ImportError:
        return None
    torch.set_num_threads(threads)
    model = build_model(TrainConfig(encoder=encoder)).eval()
    with torch.inference_mode():
        model(torch.from_numpy(batches[0][0]), torch.from_numpy(batches[0][1]))  # warm-up
        t0 = time.perf_counter()
        for ids, mask in batches:
            model(torch.from_numpy(ids), torch.from_numpy(mask))
    return time.perf_counter() - t0


def end_to_end_rounds(names: list[str], articles: Path, threads: int, rounds: int) -> list[list[tuple[float, float, int]]]:
    """end_to_end for every model, ``rounds`` times, in turn (reversed every other round); per model."""
    runs: list[list[tuple[float, float, int]]] = [[] for _ in names]
    order = list(range(len(names)))
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            runs[k].append(end_to_end(articles, threads, names[k]))
    return runs


def measure(name: str, folder: Path, articles: Path, threads: int, with_torch: bool, runs: list[tuple[float, float, int]]) -> dict:
    from propscan.pipeline.model import Model

    n_articles = len(list(articles.glob("*.txt")))
    rates = sorted(n_articles / secs for secs, _, _ in runs)
    secs = statistics.median(secs for secs, _, _ in runs)
    peak_mb, rows = max(p for _, p, _ in runs), runs[0][2]
    model = Model(folder, threads=threads)
    texts = [p.read_text(encoding="utf-8") for p in sorted(articles.glob("*.txt"))]
    per_text, n_tokens = windows_for(model, texts)
    onnx_throughput(model, per_text[:2])  # warm-up
    t_onnx = onnx_throughput(model, per_text)
    row = {"model": f"{name} ({model.name} {model.version})", "articles/s": statistics.median(rates), "seconds": secs,
           "spans": rows, "peak RSS MB": peak_mb, "onnx tokens/s": n_tokens / t_onnx}
    if len(rates) > 1:
        row["articles/s range"] = f"{rates[0]:.1f}-{rates[-1]:.1f} ({len(rates)} rounds)"
    encoder = model.config.get("base_encoder")
    t_torch = torch_throughput([b for batches in per_text for b in batches], encoder, threads) if with_torch and encoder else None
    if t_torch is not None:
        row["torch fp32 tokens/s"] = n_tokens / t_torch
        row["onnx / torch"] = t_torch / t_onnx
    return row


def main() -> None:
    from propscan.pipeline.model import available, locate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--models", nargs="+", default=None, help="fast, accurate or model folders (default: what is installed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch fp32 reference")
    ap.add_argument("--rounds", type=int, default=1, help="end-to-end runs per model, models in turn (median printed)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    articles = args.ptc / "test/test-articles"
    names = args.models or available()
    folders = [locate(name) for name in names]  # builds the accurate model first if it is not in the cache yet
    runs = end_to_end_rounds(names, articles, args.threads, args.rounds)
    rows = []
    for name, folder, model_runs in zip(names, folders, runs):
        row = measure(name, folder, articles, args.threads, not args.no_torch, model_runs)
        print("  ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print()
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{r[k]:,.1f}" if isinstance(r.get(k), float) else str(r.get(k, "–")) for k in keys]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
