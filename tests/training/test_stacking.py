"""Tuning on out-of-fold outputs: the fold splits partition train, and OutOfFold reads each article with
the network that held it out (the real shipped fast network, and a copy of it with another span head)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import PTC_DEV_ARTICLES, PTC_DEV_FLC, SHARED, copy_smallest_ptc
from propscan.errors import ModelError
from propscan.pipeline.model import MODEL_DIR, Model
from propscan.ptc import read_articles, read_labels
from propscan.training.build import retune_model_folder
from propscan.training.stacking import OutOfFold, fold_networks
from propscan.training.train import TrainConfig, held_out, recorded_held_out, split_ids
from propscan.training.tune import FOLDS, Rule, cross_fit_predictions

PTC_TRAIN = SHARED / "data" / "ptc" / "train"
TEXT = "The corrupt elites lie. The corrupt elites lie again, and the corrupt elites will always lie to you."


def test_the_folds_partition_the_articles_and_fold_0_is_the_split_before_folds():
    ids = [f"{i:03d}" for i in range(37, 0, -1)]
    helds = [split_ids(ids, 8, f)[1] for f in range(8)]
    assert sorted(i for h in helds for i in h) == sorted(ids)
    assert helds[0] == sorted(ids)[::8]
    for f, h in enumerate(helds):
        trained, held = split_ids(ids, 8, f)
        assert not set(trained) & set(held) and len(trained) + len(held) == len(ids)
    with pytest.raises(ValueError, match="val_fold 8"):
        split_ids(ids, 8, 8)


def test_a_recorded_config_without_val_fold_holds_out_fold_0():
    arts = {f"{i}": f"text {i}" for i in range(20)}
    recorded = {k: v for k, v in TrainConfig().__dict__.items() if k != "val_fold"}
    assert recorded_held_out(arts, [], recorded)[0] == held_out(arts, [], 8)[0]
    assert recorded_held_out(arts, [], {**recorded, "val_fold": 3})[0] == held_out(arts, [], 8, 3)[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The shipped fast network, and a copy whose span classifier names techniques differently."""
    folder = tmp_path_factory.mktemp("fold") / "model"
    shutil.copytree(MODEL_DIR, folder)
    with np.load(folder / "heads.npz") as z:
        heads = {k: z[k] for k in z.files}
    heads["b2"] = heads["b2"] + np.linspace(-3, 3, len(heads["b2"])).astype(heads["b2"].dtype)
    np.savez(folder / "heads.npz", **heads)
    return Model(threads=1), Model(folder, threads=1)


def test_each_text_is_read_by_the_network_that_held_it_out(pair):
    main, fold = pair
    other = "An article nobody held out, about a quiet council meeting."
    stacked = OutOfFold(main, [(fold, {"a1": TEXT})])
    assert stacked.network(TEXT) is fold and stacked.network(other) is main
    out = stacked.token_outputs(TEXT)
    ranges = [(0, 3), (5, 8)]
    assert np.allclose(stacked.classify_spans(TEXT, out, ranges), fold.classify_spans(TEXT, out, ranges, main.decoding.get("repeat_bonus", 0.0)))
    assert not np.allclose(stacked.classify_spans(TEXT, out, ranges), main.classify_spans(TEXT, out, ranges))
    assert np.allclose(stacked.classify_spans(other, out, ranges), main.classify_spans(other, out, ranges))


def test_the_repetition_bonus_being_tuned_reaches_the_fold_networks(pair):
    main, fold = pair
    stacked = OutOfFold(main, [(fold, {"a1": TEXT})])
    before = main.decoding
    try:
        out = stacked.token_outputs(TEXT)
        start = TEXT.index("corrupt elites", 10)  # a later mention: the bonus applies to it
        a = int(np.flatnonzero(out.enc.offsets[:, 0] == start)[0])
        b = int(np.flatnonzero(out.enc.offsets[:, 1] == start + len("corrupt elites"))[0]) + 1
        later = [(a, b)]
        stacked.decoding = {**before, "repeat_bonus": 0.0}
        low = stacked.classify_spans(TEXT, out, later)
        stacked.decoding = {**before, "repeat_bonus": 8.0}
        assert main.decoding["repeat_bonus"] == 8.0
        high = stacked.classify_spans(TEXT, out, later)
        assert np.allclose(high, fold.classify_spans(TEXT, out, later, 8.0))
        assert not np.allclose(low, high)
    finally:
        main.decoding = before


def test_cross_fitted_tuning_reads_train_articles_through_their_fold_network_and_dev_through_main(pair, tmp_path):
    if not (PTC_DEV_ARTICLES.is_dir() and (PTC_TRAIN / "train-articles").is_dir()):
        pytest.skip("PTC data absent")
    main, fold = pair
    (tmp_path / "h").mkdir()
    (tmp_path / "d").mkdir()
    h = copy_smallest_ptc(PTC_TRAIN / "train-articles", PTC_TRAIN / "train-task-flc-tc.labels", 3, tmp_path / "h")
    d = copy_smallest_ptc(PTC_DEV_ARTICLES, PTC_DEV_FLC, FOLDS, tmp_path / "d")
    train = read_articles(h.articles)
    dev = read_articles(d.articles)
    held_by_fold = dict(list(train.items())[:2])
    stacked = OutOfFold(main, [(fold, held_by_fold)])
    asked: dict[str, list[str]] = {"main": [], "fold": []}
    for name, net in (("main", main), ("fold", fold)):
        real = net.token_outputs
        net.token_outputs = lambda text, real=real, name=name: asked[name].append(text) or real(text)
    before = main.config, main.decoding, main.settings
    try:
        pred, _, _ = cross_fit_predictions(stacked, (train, read_labels(h.gold, train)), (dev, read_labels(d.gold, dev)),
                                           log=lambda m: None, cache={}, rule=Rule())
    finally:
        del main.token_outputs, fold.token_outputs
        main.config, main.decoding, main.settings = before
    assert sorted(asked["fold"]) == sorted(held_by_fold.values())
    assert sorted(asked["main"]) == sorted([t for a, t in train.items() if a not in held_by_fold] + list(dev.values()))
    assert {p.article_id for p in pred} <= set(dev)


def _fold_copy(tmp_path, name: str, **train_config) -> Path:
    folder = tmp_path / name
    shutil.copytree(MODEL_DIR, folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["train_config"] = {**meta["train_config"], **train_config}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def test_a_network_of_another_recipe_or_a_fold_already_held_out_is_refused(tmp_path):
    arts = {f"{i:03d}": f"text {i}" for i in range(24)}
    main = json.loads((MODEL_DIR / "model.json").read_text())
    ok = _fold_copy(tmp_path, "ok", val_fold=1)
    [(net, held)] = fold_networks([ok], arts, [], main)
    assert sorted(held) == sorted(arts)[1::8]
    with pytest.raises(ModelError, match="differs in lr"):
        fold_networks([_fold_copy(tmp_path, "lr", val_fold=2, lr=1.0)], arts, [], main)
    with pytest.raises(ModelError, match="holds out fold 0"):
        fold_networks([_fold_copy(tmp_path, "zero", val_fold=0)], arts, [], main)
    with pytest.raises(ModelError, match="holds out fold 1"):
        fold_networks([ok, _fold_copy(tmp_path, "again", val_fold=1, device="cuda")], arts, [], main)


def test_a_retune_with_fold_networks_tunes_on_every_article_out_of_fold_and_the_card_says_so(tmp_path, monkeypatch):
    if not (PTC_DEV_ARTICLES.is_dir() and (PTC_TRAIN / "train-articles").is_dir()):
        pytest.skip("PTC data absent")
    for d in ("h", "d"):
        (tmp_path / d).mkdir()
    h = copy_smallest_ptc(PTC_TRAIN / "train-articles", PTC_TRAIN / "train-task-flc-tc.labels", 16, tmp_path / "h")
    d = copy_smallest_ptc(PTC_DEV_ARTICLES, PTC_DEV_FLC, FOLDS, tmp_path / "d")
    train, dev = read_articles(h.articles), read_articles(d.articles)
    main, fold = _fold_copy(tmp_path, "main"), _fold_copy(tmp_path, "fold", val_fold=1)
    read_by: dict[str, set] = {}
    real = Model.token_outputs

    def spy(self, text):
        read_by.setdefault(text, set()).add(Path(self.folder).name)
        return real(self, text)

    monkeypatch.setattr(Model, "token_outputs", spy)
    meta = retune_model_folder(main, train, read_labels(h.gold, train), (dev, read_labels(d.gold, dev)), version="t",
                               log=lambda m: None, folds=[fold])
    ids = sorted(train)
    assert meta["tuned_on"] == {"heldout_articles": len(ids[0::8] + ids[1::8]), "dev_articles": FOLDS, "fold_networks": 1}
    assert {a for a, t in train.items() if t in read_by} == set(ids[0::8] + ids[1::8])
    assert all(read_by[train[a]] == {"fold"} for a in ids[1::8]) and all(read_by[train[a]] == {"main"} for a in ids[0::8])
    assert all(read_by[t] == {"main"} for t in dev.values())
    card = (main / "MODEL_CARD.md").read_text()
    assert "1 fold network for the rest" in card
    assert "--val-fold N" in card and "--folds fold-1 fold-2 fold-3 fold-4 fold-5 fold-6 fold-7" in card


def test_a_retune_refused_for_its_fold_networks_leaves_the_model_folder_as_it_was(tmp_path):
    main = _fold_copy(tmp_path, "main")
    before = {p.name: p.read_bytes() for p in main.iterdir()}
    arts = {f"{i:03d}": f"text {i}" for i in range(24)}
    with pytest.raises(ModelError, match="holds out fold 0"):
        retune_model_folder(main, arts, [], None, version="t", log=lambda m: None, folds=[_fold_copy(tmp_path, "zero")])
    assert {p.name: p.read_bytes() for p in main.iterdir()} == before
