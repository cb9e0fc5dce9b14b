"""`propscan train` end to end, small: six short PTC train articles, one epoch, a two-run soup whose
second member is distilled from the shipped model; then ONNX export, int8, tuning on the held-out
split, dev figures and the card, and the runtime analysing with the result.

Needs the train extra, which `make test` installs: without it these tests skip, and fail under CI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SHARED, copy_smallest_ptc, require_train_extra, run_cli
from propscan.evaluation.evaluate import FIVE
from propscan.pipeline.calibrate import Calibration
from propscan.pipeline.model import MODEL_DIR
from propscan.ptc import read_articles
from propscan.techniques import TECHNIQUE_IDS
from propscan.training.build import INT8_RUNTIME
from propscan.training.tune import NARROW, OUT_OF_FOLD_CUTOFFS, PARTITIONS, Rule

PTC_TRAIN = SHARED / "data" / "ptc" / "train"
N_ARTICLES = 6
VAL_EVERY = 3  # 2 of the 6 are held out for tuning
RULE = Rule(detectors=NARROW, calibration=OUT_OF_FOLD_CUTOFFS)  # the recipe's tuning rule


@pytest.fixture(scope="module")
def built(tmp_path_factory, ptc_sample):
    require_train_extra()
    if not (PTC_TRAIN / "train-articles").is_dir():
        pytest.skip(f"PTC train data absent under {PTC_TRAIN}")
    base = tmp_path_factory.mktemp("build")
    train = copy_smallest_ptc(PTC_TRAIN / "train-articles", PTC_TRAIN / "train-task-flc-tc.labels", N_ARTICLES, base)
    recipe = base / "recipe.json"
    # a model.json's form: the settings and the tuning rule (here not today's) a model was made by
    recipe.write_text(json.dumps({"train_config": {
        "epochs": 1, "batch_size": 4, "val_every": VAL_EVERY, "threads": 2, "device": "cpu",
        "members": [{}, {"order_seed": 7, "teacher": str(MODEL_DIR), "teacher_weight": 0.5}],
    }, "tuning_rule": RULE.to_json()}))
    out = base / "model"
    res = run_cli(
        "train", "--articles", train.articles, "--labels", train.gold, "--out", out, "--recipe", recipe,
        "--dev-articles", ptc_sample.articles, "--dev-labels", ptc_sample.gold, timeout=900,
    )
    return out, res


@pytest.fixture(scope="module")
def final(built, ptc_sample, tmp_path_factory):
    """The same recipe trained on train + dev (a final model), its dev figures lent by the train-only run."""
    out, res = built
    assert res.rc == 0, res.stderr[-2000:]
    base = tmp_path_factory.mktemp("final")
    train_articles = out.parent / "articles"
    (base / "train-articles").symlink_to(train_articles)
    (base / "dev-articles").symlink_to(ptc_sample.articles)
    # the train-only run as a model from before model.json's runtime block (as the shipped fast model is):
    # the final model must run its network as that run did, not as new int8 models do
    lender = base / "train-only"
    lender.mkdir()
    meta = json.loads((out / "model.json").read_text())
    assert meta.pop("runtime") == INT8_RUNTIME
    (lender / "model.json").write_text(json.dumps(meta))
    final = base / "model"
    res = run_cli(
        "train", "--articles", base / "train-articles", "--labels", out.parent / "gold.labels",
        "--articles", base / "dev-articles", "--labels", ptc_sample.gold,
        "--out", final, "--recipe", out.parent / "recipe.json", "--dev-figures-from", lender, timeout=900,
    )
    return final, res


def test_a_final_model_trains_on_train_and_dev_and_reports_the_train_only_runs_dev_figures(built, final, ptc_sample):
    out, _ = built
    final, res = final
    assert res.rc == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    meta, first = json.loads((final / "model.json").read_text()), json.loads((out / "model.json").read_text())
    assert meta["train_sets"] == ["PTC v2 train", "PTC v2 dev"]
    n = N_ARTICLES + len(read_articles(ptc_sample.articles))
    split = json.loads((final / "checkpoint" / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) == n  # dev articles trained on, or held out for tuning
    assert set(split["train"]) & set(ptc_sample.ids)
    assert meta["tuned_on"]["dev_articles"] == 0  # dev is training data here, not tuning data
    # it runs as its lender ran: no runtime block, so the graph keeps the attention-mask bias that new
    # int8 models (the train-only run here) leave out
    import onnx

    from propscan.training.export import drop_padding_bias

    assert "runtime" not in meta
    assert drop_padding_bias(onnx.load(final / "model.onnx")) > 0
    assert drop_padding_bias(onnx.load(out / "model.onnx")) == 0
    assert meta["dev"] == {**first["dev"], "from_run": f"{first['name']} {first['version']}"}
    for t in TECHNIQUE_IDS:
        assert meta["by_technique"][t]["dev"] == first["by_technique"][t]["dev"]
    card = (final / "MODEL_CARD.md").read_text()
    assert f"PTC v2 train + PTC v2 dev minus held-out ({len(split['train'])} articles)" in card
    assert f"detection tuned on the {len(split['val'])} held-out PTC v2 train + PTC v2 dev articles" in card
    assert f"these are the figures of {first['name']} {first['version']}, the run with the same recipe trained without dev" in card
    assert f"this model's on its {len(split['val'])} held-out articles alone" in card and "may overstate this model" in card
    assert "--dev-figures-from train-only" in card and "--out train-only" in card


def test_train_writes_a_model_folder_with_its_card(built, ptc_sample):
    out, res = built
    assert res.rc == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    assert f"distilling from {shipped['name']} {shipped['version']}" in res.stderr  # the second member only
    assert res.stderr.count("distilling from") == 1
    for name in ("model.onnx", "tokenizer.json", "heads.npz", "model.json", "MODEL_CARD.md"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "model.json").read_text())
    assert meta["name"] == "propscan-minilm" and meta["quantized"] == "int8 dynamic, per-channel"
    assert meta["teachers"] == [{"folder": str(MODEL_DIR), "name": shipped["name"], "version": shipped["version"]}]
    assert len(meta["train_config"]["members"]) == 2 and meta["train_config"]["epochs"] == 1
    assert 0 <= meta["tuning_tc_f1"] <= 1 and 0 <= meta["tuning_flc_f1"]["micro"] <= 1
    # every technique tuned and calibrated on the held-out articles and dev; none switched off
    assert meta["tuned_on"] == {"heldout_articles": 2, "dev_articles": len(read_articles(ptc_sample.articles))}
    assert meta["labels"] == list(TECHNIQUE_IDS)
    for t in TECHNIQUE_IDS:
        assert 0 <= meta["thresholds"][t] <= 1 and 0 <= meta["cutoffs"][t] < 1
        assert meta["detectors"][t]["source"] in ("channel", "classify", "repeat") and meta["calibration"][t][0] > 0
        assert set(meta["by_technique"][t]) == {"tuning", "dev"}
    # dev took part in the tuning: its figures are cross-fitted, the shipped settings' own kept apart
    assert meta["dev"]["cross_fitted"] is True and set(meta["dev"]["in_sample"]) >= {"si", "flc", "tc", "ece"}
    assert 0 <= meta["dev"]["ece"] <= 1 and 0 <= meta["dev"]["flc_mean_technique_f1"] <= 1
    assert 0 <= meta["dev"]["ece_floor"] <= 1
    means = meta["dev"]["partition_mean"]  # the five figures over PARTITIONS ways of dealing dev into fifths
    assert means["partitions"] == PARTITIONS and set(means) == {"partitions", *FIVE}
    assert all(0 <= means[n] <= 1 for n in FIVE) and means["TC"] == round(meta["dev"]["tc"]["f1"], 4)  # TC reads gold spans
    assert meta["tuning_rule"] == RULE.to_json()  # the recipe's; what benchmarks/quality.py cross-fits it by
    for d in meta["detectors"].values():  # from the narrow set (tune.DETECTOR_SETS)
        assert d["max_gap"] in (2, 5) if d["source"] == "channel" else d.get("any_threshold", 0.2) in (0.2, 0.3), d
    # the cutoffs are the tuned evidence cutoffs on the calibrated scale
    cal = Calibration(meta["calibration"])
    for t in TECHNIQUE_IDS:
        assert 0 <= float(cal(t, meta["thresholds"][t])) - meta["cutoffs"][t] < 1e-4
    for task in ("si", "flc", "tc"):
        assert 0 <= meta["dev"][task]["f1"] <= 1 and 0 <= meta["dev_fp32"][f"{task}_f1"] <= 1
    assert meta["dev"]["tc"]["n_gold"] > 0  # the dev sample's gold spans were scored
    card = (out / "MODEL_CARD.md").read_text()
    assert f"PTC v2 train minus held-out ({N_ARTICLES - 2} articles)" in card and "cross-fitted" in card
    assert f"with these confidences would show {meta['dev']['ece_floor']:.4f} by chance" in card
    assert f"the mean over {PARTITIONS} ways (the first this one) is SI {means['SI']:.4f}" in card
    assert "a weight average of 2 runs" in card and f"Distilled from {shipped['name']} {shipped['version']}" in card
    assert "retune_model.py" not in card  # trained from its model.json, the rule comes with it
    split = json.loads((out / "checkpoint" / "split.json").read_text())
    assert len(split["train"]) == N_ARTICLES - 2 and len(split["val"]) == 2


def test_the_soup_is_the_mean_of_its_members(built):
    import torch

    out, _ = built
    soup = torch.load(out / "checkpoint" / "weights.pt")
    members = [torch.load(out / "checkpoint" / f"member-{k}" / "weights.pt") for k in (1, 2)]
    key = "token_head.weight"
    assert not torch.equal(members[0][key], members[1][key])  # other data order, one distilled: other weights
    for key, value in soup.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (members[0][key] + members[1][key]) / 2)


def test_the_exported_network_computes_what_the_checkpoint_does(built, tmp_path):
    """fp32 ONNX against PyTorch on one window of real text; the numpy span head against torch's."""
    import torch

    from propscan.pipeline import encoding
    from propscan.training.export import export_onnx
    from propscan.pipeline.model import Model
    from propscan.training.train import load_checkpoint

    out, _ = built
    ckpt = out / "checkpoint"
    fp32 = export_onnx(ckpt, tmp_path / "fp32", quantize=False)
    (fp32 / "model.json").write_text((out / "model.json").read_text())
    runtime = Model(fp32, threads=1)
    net, _ = load_checkpoint(ckpt)
    text = (SHARED / "examples" / "seed-opinion-article.txt").read_text(encoding="utf-8")
    enc = encoding.encode(runtime.tokenizer, text)
    ids, mask = encoding.batch_windows(enc.ids, encoding.make_windows(len(enc))[:1], runtime.cls_id, runtime.sep_id, runtime.pad_id)
    onnx_logits, onnx_hidden = runtime.run_windows(ids, mask)
    with torch.no_grad():
        logits, hidden = net(torch.from_numpy(ids).long(), torch.from_numpy(mask).long())
    np.testing.assert_allclose(onnx_logits, logits.numpy(), atol=2e-4)
    np.testing.assert_allclose(onnx_hidden, hidden.numpy(), atol=2e-4)
    feats = np.random.default_rng(0).normal(size=(5, net.span_head[0].in_features)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net.span_head(torch.from_numpy(feats)), -1).numpy()
    np.testing.assert_allclose(runtime.span_head(feats), expected, atol=1e-5)


def test_a_graph_without_the_mask_bias_computes_the_same_on_unpadded_windows(built, tmp_path):
    """export_onnx(padding_bias=False) bypasses one Add per layer; for the unpadded windows the runtime
    gives it, the outputs are the same to the bit; a padded batch shows the bias was really gone."""
    import onnx
    import onnxruntime as ort

    from propscan.pipeline import encoding
    from propscan.pipeline.model import Model
    from propscan.training.export import export_onnx
    from propscan.training.train import load_checkpoint

    out, _ = built
    ckpt = out / "checkpoint"
    graphs = [export_onnx(ckpt, tmp_path / name, quantize=False, padding_bias=bias) / "model.onnx"
              for name, bias in (("with", True), ("without", False))]
    adds = [sum(n.op_type == "Add" for n in onnx.load(str(g)).graph.node) for g in graphs]
    assert adds[0] - adds[1] == load_checkpoint(ckpt)[0].encoder.config.num_hidden_layers
    sessions = [ort.InferenceSession(str(g), providers=["CPUExecutionProvider"]) for g in graphs]
    tok = Model(out, threads=1)
    enc = encoding.encode(tok.tokenizer, (SHARED / "examples" / "seed-opinion-article.txt").read_text(encoding="utf-8"))
    for window in ((0, encoding.WINDOW), (0, 17)):
        ids, mask = encoding.batch_windows(enc.ids, [window], tok.cls_id, tok.sep_id)
        a, b = (s.run(None, {"input_ids": ids, "attention_mask": mask}) for s in sessions)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    ids, mask = encoding.batch_windows(enc.ids, [(0, 40), (0, 17)], tok.cls_id, tok.sep_id)
    a, b = (s.run(None, {"input_ids": ids, "attention_mask": mask})[0] for s in sessions)
    assert np.abs(a[1, :19] - b[1, :19]).max() > 1e-3  # the short row saw its padding without the bias


def test_new_int8_models_record_how_they_are_run(built):
    from propscan.pipeline.model import RUNTIME_DEFAULTS, Model
    from propscan.training.build import INT8_RUNTIME

    out, _ = built
    assert json.loads((out / "model.json").read_text())["runtime"] == INT8_RUNTIME
    assert Model(out, threads=1).runtime == {**RUNTIME_DEFAULTS, **INT8_RUNTIME}
    # and the card says so: the speed and the figures hold only under these settings
    card = (out / "MODEL_CARD.md").read_text()
    assert "run as it was tuned: a text's last window only as long as" in card and "SkipLayerNormFusion left out" in card


def test_the_runtime_analyses_with_the_trained_model(built, tmp_path):
    out, _ = built
    meta = json.loads((out / "model.json").read_text())
    text = tmp_path / "a.txt"
    text.write_text("The corrupt elites will never stop lying to you. Wake up, patriots!\n", encoding="utf-8")
    res = run_cli("analyze", "--model", out, "--format", "json", text)
    assert res.rc == 0, res.stderr
    analysis = json.loads(res.stdout)
    assert (analysis["model"]["name"], analysis["model"]["version"]) == (meta["name"], meta["version"])
