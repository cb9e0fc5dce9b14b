"""Speed on the 90 PTC test articles: end to end (CLI start-up included), tokens/s, peak RSS,
and, in the same run, the same network in PyTorch fp32 so the runtime's gain is a measured ratio.

    python benchmarks/speed.py [--ptc ../shared/data/ptc] [--model DIR] [--checkpoint DIR] [--threads 2]

End to end = ``propscan analyze <test-articles> --format semeval -o FILE`` in a fresh process.
PyTorch needs the train extra (``make install-train``). With ``--checkpoint`` (a ``propscan train``
checkpoint) it loads the trained weights; without, it uses the same architecture initialised from the
base encoder, which runs at the same speed (speed does not depend on the weight values).
``--model`` times another model folder (say one trained with ``--encoder all-mpnet-base-v2``) instead
of the shipped one; pass its ``checkpoint`` folder too for the PyTorch side.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def end_to_end(articles: Path, threads: int, model: Path | None) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred.labels"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PROPSCAN_THREADS=str(threads))
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "propscan", "analyze", str(articles), "--format", "semeval", "-o", str(out),
             *(["--model", str(model)] if model else [])],
            check=True, env=env, stderr=subprocess.DEVNULL,
        )
        secs = time.perf_counter() - t0
        rows = sum(1 for _ in out.open())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return secs, peak_mb, rows


def windows_for(model, texts: list[str]):
    """The model inputs exactly as the runtime builds them (model.BATCH windows per call), per text."""
    from propscan import encoding
    from propscan.model import BATCH

    per_text, n_tokens = [], 0
    for text in texts:
        enc = encoding.encode(model.tokenizer, text)
        n_tokens += len(enc)
        wins = encoding.make_windows(len(enc))
        per_text.append([encoding.batch_windows(enc.ids, wins[k : k + BATCH], model.cls_id, model.sep_id, model.pad_id)
                         for k in range(0, len(wins), BATCH)])
    return per_text, n_tokens


def onnx_throughput(model, per_text) -> float:
    """As the runtime runs them: a text's windows side by side on the model's threads, and as many
    texts at once as the CLI analyses (analyze.in_order), at most ``threads`` calls running."""
    from propscan.analyze import in_order

    t0 = time.perf_counter()
    for _, done in in_order(lambda batches: model.map_calls(lambda b: model.run_windows(*b), batches), per_text, model.threads):
        done.result()
    return time.perf_counter() - t0


def torch_throughput(batches, checkpoint: Path | None, threads: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    from propscan.training.train import TrainConfig, build_model, load_checkpoint

    torch.set_num_threads(threads)
    model = load_checkpoint(checkpoint)[0] if checkpoint else build_model(TrainConfig()).eval()
    with torch.inference_mode():
        model(torch.from_numpy(batches[0][0]), torch.from_numpy(batches[0][1]))  # warm-up
        t0 = time.perf_counter()
        for ids, mask in batches:
            model(torch.from_numpy(ids), torch.from_numpy(mask))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ptc", type=Path, default=HERE.parent.parent / "shared/data/ptc")
    ap.add_argument("--model", type=Path, default=None, help="a model folder (default: the shipped one)")
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    articles = args.ptc / "test/test-articles"
    n_articles = len(list(articles.glob("*.txt")))

    secs, peak_mb, rows = end_to_end(articles, args.threads, args.model)
    print(f"end to end: {n_articles} articles in {secs:.2f}s = {n_articles / secs:.1f} articles/s "
          f"(start-up included), {rows} spans, peak RSS {peak_mb:.0f} MB")

    from propscan.model import Model

    model = Model(args.model, threads=args.threads) if args.model else Model(threads=args.threads)
    texts = [p.read_text(encoding="utf-8") for p in sorted(articles.glob("*.txt"))]
    per_text, n_tokens = windows_for(model, texts)
    onnx_throughput(model, per_text[:2])  # warm-up
    t_onnx = onnx_throughput(model, per_text)
    print(f"onnxruntime int8: {n_tokens} tokens in {t_onnx:.2f}s = {n_tokens / t_onnx:,.0f} tokens/s (network only)")
    t_torch = torch_throughput([b for batches in per_text for b in batches], args.checkpoint, args.threads)
    if t_torch is None:
        print("pytorch fp32: skipped (torch not installed; `make install-train`)")
    else:
        print(f"pytorch fp32:     {n_tokens} tokens in {t_torch:.2f}s = {n_tokens / t_torch:,.0f} tokens/s; "
              f"onnxruntime int8 is {t_torch / t_onnx:.2f}x faster")


if __name__ == "__main__":
    main()
