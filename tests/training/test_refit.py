"""Refitting the span classifier on frozen inputs after training (``span_refit_epochs``): it trains the
classifier alone, keeps the best held-out epoch, never ends below where it started, and runs at the
end of `train` (the real MiniLM, small texts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from conftest import require_train_extra
from propscan.pipeline import encoding
from propscan.training.train import RESUME_FILE, TrainConfig, article_examples
from test_resume import LABELS, TEXTS


def _examples(tok, cfg, ids):
    by = {a: [lab for lab in LABELS if lab.article_id == a] for a in ids}
    return [ex for a in ids for ex in article_examples(tok, TEXTS[a], by[a], cfg)]


def test_refit_trains_the_span_classifier_alone_and_keeps_its_best_epoch():
    require_train_extra()
    import torch

    from propscan.training.train import base_encoder_dir, build_model, refit_span_head

    torch.manual_seed(0)
    cfg = TrainConfig(span_refit_epochs=40, span_refit_lr=1e-2)
    model = build_model(cfg)
    tok = encoding.load_tokenizer(base_encoder_dir(cfg.encoder) / "tokenizer.json")
    examples = _examples(tok, cfg, ["1", "2", "4"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    said = []
    first, best, epoch = refit_span_head(model, examples, examples, cfg, torch.device("cpu"), encoding.special_ids(tok), said.append)
    assert best > first and 1 <= epoch <= 40  # an untrained head learns the spans it is shown
    assert re.search(rf"held-out TC accuracy {first:.4f} -> {best:.4f} \(epoch {epoch} of 40\)", said[-1])
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("span_head.") for k in changed)


def test_refit_keeps_the_head_when_no_epoch_is_better():
    require_train_extra()
    import torch

    from propscan.training.train import base_encoder_dir, build_model, refit_span_head

    torch.manual_seed(0)
    cfg = TrainConfig(span_refit_epochs=3, span_refit_lr=0.0)  # a zero learning rate: nothing can improve
    model = build_model(cfg)
    tok = encoding.load_tokenizer(base_encoder_dir(cfg.encoder) / "tokenizer.json")
    examples = _examples(tok, cfg, ["1", "2"])
    head = {k: v.clone() for k, v in model.span_head.state_dict().items()}
    first, best, epoch = refit_span_head(model, examples, examples, cfg, torch.device("cpu"), encoding.special_ids(tok), lambda m: None)
    assert (first, epoch) == (best, 0)
    assert all(torch.equal(head[k], v) for k, v in model.span_head.state_dict().items())


def test_train_refits_after_its_last_epoch(tmp_path):
    require_train_extra()
    import torch

    from propscan.training.train import train

    cfg = TrainConfig(epochs=1, batch_size=2, val_every=2, threads=1, device="cpu", span_refit_epochs=5)
    said = []
    train(TEXTS, LABELS, tmp_path, cfg, log=said.append)
    assert said[-1].startswith("span classifier refitted on") and "(epoch" in said[-1]
    state = torch.load(tmp_path / RESUME_FILE, weights_only=False)
    assert state["span_refit_done"] is True and state["finished"] is True
    assert "trainable" not in state and "optimizer" not in state  # the weights are in weights.pt only
    said.clear()
    train(TEXTS, LABELS, tmp_path, cfg, log=said.append)  # finished and refitted: nothing to do
    assert said[-1].startswith("resuming") and not any("refitted" in m for m in said)


def test_a_run_stopped_before_its_refit_refits_the_weights_it_saved(tmp_path, monkeypatch):
    """Killed between its last epoch and the span classifier's refit, a run started again refits the
    span classifier of the weights its last epoch saved, and trains nothing."""
    require_train_extra()
    import pytest
    import torch

    import propscan.training.train as train_mod

    cfg = TrainConfig(epochs=1, batch_size=2, val_every=2, threads=1, device="cpu", span_refit_epochs=5)

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_mod, "refit_span_head", killed)
        with pytest.raises(KeyboardInterrupt):
            train_mod.train(TEXTS, LABELS, tmp_path, cfg, log=lambda m: None)
    state = torch.load(tmp_path / RESUME_FILE, weights_only=False)
    assert state["finished"] is True and not state["span_refit_done"]
    trained = torch.load(tmp_path / "weights.pt")
    said = []
    train_mod.train(TEXTS, LABELS, tmp_path, cfg, log=said.append)
    assert not any(m.startswith("epoch ") for m in said)  # no training step ran again
    assert said[-1].startswith("span classifier refitted on")
    refitted = torch.load(tmp_path / "weights.pt")
    encoder = [k for k in trained if k.startswith("encoder.")]
    assert encoder and all(torch.equal(trained[k], refitted[k]) for k in encoder)
    assert torch.load(tmp_path / RESUME_FILE, weights_only=False)["span_refit_done"] is True


def test_a_finished_checkpoint_is_refitted_in_place(tmp_path):
    require_train_extra()
    import json

    import torch

    from propscan.training.train import refit_checkpoint, train

    cfg = TrainConfig(epochs=1, batch_size=2, val_every=2, threads=1, device="cpu")
    train(TEXTS, LABELS, tmp_path, cfg, log=lambda m: None)
    before = torch.load(tmp_path / "weights.pt")
    said = []
    refit_checkpoint(tmp_path, TEXTS, LABELS, epochs=30, lr=1e-2, log=said.append)
    after = torch.load(tmp_path / "weights.pt")
    assert "span classifier refitted" in said[-1]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert all(k.startswith("span_head.") for k in changed)
    recorded = json.loads((tmp_path / "train_config.json").read_text())
    assert (recorded["span_refit_epochs"], recorded["span_refit_lr"]) == (30, 1e-2)


def test_a_model_folder_is_refitted_on_its_runtime_outputs(tmp_path):
    """scripts/refit_span_head.py on a copy of the shipped fast model: only heads.npz changes, to the
    best held-out epoch, and the folder still loads and names spans."""
    require_train_extra()
    import shutil
    import subprocess
    import sys

    from propscan.pipeline.model import MODEL_DIR, Model
    from propscan.ptc import write_labels
    from propscan.training.refit import runtime_span_inputs

    folder, texts = tmp_path / "model", tmp_path / "articles"
    shutil.copytree(MODEL_DIR, folder)
    texts.mkdir()
    for aid, text in TEXTS.items():
        (texts / f"article{aid}.txt").write_text(text, encoding="utf-8")
    write_labels(tmp_path / "labels.txt", LABELS)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    script = Path(__file__).resolve().parents[2] / "scripts" / "refit_span_head.py"
    run = subprocess.run([sys.executable, str(script), str(folder), "--articles", str(texts), "--labels",
                          str(tmp_path / "labels.txt"), "--epochs", "20", "--lr", "1e-2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    said = run.stdout.strip().splitlines()[-1]
    m = re.search(r"runtime inputs.*held-out TC accuracy ([\d.]+) -> ([\d.]+) \(epoch (\d+) of 20\)", said)
    assert m, said
    first, best, epoch = float(m[1]), float(m[2]), int(m[3])
    assert best >= first
    changed = {p.name for p in folder.iterdir() if before.get(p.name) != p.read_bytes()}
    assert changed == ({"heads.npz"} if epoch else set())
    x, y = runtime_span_inputs(Model(folder, threads=1), dict(TEXTS), LABELS)
    assert len(x) == len(LABELS) == len(y) and np.isfinite(x).all()
