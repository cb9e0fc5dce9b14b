"""Refit a model folder's span classifier on what the runtime network gives (no training checkpoint
needed): the classifier's inputs are pooled from the shipped network's own outputs (int8 for the fast
model) on every gold span of the training articles, and the epoch is picked by TC accuracy on the
held-out ones. Only ``heads.npz`` changes; tune the folder again afterwards (build.retune_model_folder).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from propscan.pipeline import encoding, features
from propscan.pipeline.model import Model
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS
from propscan.training.train import TrainConfig, fit_span_head, labels_by_article, split_ids


def runtime_span_inputs(model: Model, articles: dict[str, str], labels: list[Label]) -> tuple[np.ndarray, np.ndarray]:
    """The span classifier's inputs as ``Model.span_probs`` builds them, and the technique, per gold span."""
    by = labels_by_article(articles, labels)
    x, y = [], []
    for aid, text in articles.items():
        if not by[aid]:
            continue
        out = model.token_outputs(text)
        lower = text.lower()
        for lab in by[aid]:
            a, b = encoding.token_range(out.enc, lab.start, lab.end)
            if a < 0:
                continue
            x.append(features.span_input(out.hidden, out.logits, lower, a, b, lab.start, lab.end))
            y.append(TECHNIQUE_IDS.index(lab.technique))
    return np.stack(x).astype(np.float32), np.array(y, dtype=np.int64)


def refit_heads(folder: Path, articles: dict[str, str], labels: list[Label], epochs: int = 40, lr: float = 3e-4,
                log=print) -> tuple[float, float, int]:
    """Refit ``folder``'s heads.npz in place over its own train / held-out split (``val_every`` from its
    train_config). Returns (held-out TC accuracy before, after, epoch kept)."""
    import json

    import torch
    from torch import nn

    config = json.loads((folder / "model.json").read_text())
    cfg = TrainConfig(**{**config.get("train_config", {}), "members": [], "span_refit_epochs": epochs, "span_refit_lr": lr})
    train_ids, val_ids = split_ids(list(articles), cfg.val_every, cfg.val_fold)
    t0 = time.time()
    model = Model(folder, threads=cfg.threads)
    x_train, y_train = runtime_span_inputs(model, {a: articles[a] for a in train_ids}, labels)
    x_val, y_val = runtime_span_inputs(model, {a: articles[a] for a in val_ids}, labels)
    with np.load(folder / "heads.npz") as z:
        w = {k: z[k] for k in z.files}
    head = nn.Sequential(nn.Linear(w["w1"].shape[1], w["w1"].shape[0]), nn.GELU(), nn.Dropout(0.1),
                         nn.Linear(w["w2"].shape[1], w["w2"].shape[0]))
    with torch.no_grad():
        for layer, wk, bk in ((head[0], "w1", "b1"), (head[3], "w2", "b2")):
            layer.weight.copy_(torch.from_numpy(w[wk]))
            layer.bias.copy_(torch.from_numpy(w[bk]))
    torch.manual_seed(cfg.seed)
    first, best, epoch = fit_span_head(
        head, (torch.from_numpy(x_train), torch.from_numpy(y_train)), (torch.from_numpy(x_val), torch.from_numpy(y_val)),
        cfg, torch.device("cpu"))
    tmp = folder / ".heads.tmp.npz"  # replaced in one move: a stopped run leaves the old heads
    np.savez(tmp, w1=head[0].weight.detach().numpy(), b1=head[0].bias.detach().numpy(),
             w2=head[3].weight.detach().numpy(), b2=head[3].bias.detach().numpy())
    tmp.replace(folder / "heads.npz")
    log(f"span classifier refitted on {len(y_train)} gold spans (runtime inputs) in {time.time() - t0:.0f}s: "
        f"held-out TC accuracy {first:.4f} -> {best:.4f} (epoch {epoch} of {epochs})")
    return first, best, epoch
