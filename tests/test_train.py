"""Training data preparation (no torch needed): token labels, the masking of out-of-inventory spans, and
texts labelled without spans (the weak loss itself needs torch and is skipped without it)."""

import json
from pathlib import Path

import numpy as np
import pytest

from propscan import encoding
from propscan.model import MODEL_DIR
from propscan.techniques import TECHNIQUE_IDS
from propscan.train import ANY, N_OUT, TrainConfig, WeakExample, _length_buckets, _weak_loss, extra_examples, weak_examples

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
    torch = pytest.importorskip("torch", reason="the weak loss needs the train extra (torch)")
    from torch import nn

    weak = weak_examples(TOK, _weak_file(tmp_path), TrainConfig())

    class Tiny(nn.Module):  # token logits from an embedding: enough to check the loss, no encoder needed
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(TOK.get_vocab_size(), N_OUT)

        def forward(self, ids, mask):
            return self.emb(ids), None

    model = Tiny()
    cls_id, sep_id = TOK.token_to_id("[CLS]"), TOK.token_to_id("[SEP]")
    bce = nn.BCEWithLogitsLoss(reduction="none")
    with torch.no_grad():
        model.emb.weight.zero_()
        model.emb.weight[cls_id] = 50.0  # specials never count as the top token
        model.emb.weight[sep_id] = 50.0
    loss = _weak_loss(model, weak, cls_id, sep_id, bce)
    assert torch.isclose(loss, torch.tensor(N_OUT * np.log(2.0), dtype=loss.dtype))  # every logit 0
    loss.backward()
    grad = model.emb.weight.grad
    assert grad[cls_id].abs().sum() == 0 and grad[sep_id].abs().sum() == 0
    # in the first text, its labelled Slogans pushes one token's score up, the unlabelled Doubt one down
    model.emb.weight.grad = None
    _weak_loss(model, weak[:1], cls_id, sep_id, bce).backward()
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
    from propscan.build import _training_data

    cfg = TrainConfig(extra=["d/semeval2021t6/train/spans.json"],
                      members=[{"weak": ["d/semeval2024t4/train/memes.json"]}, {"order_seed": 14}])
    text = _training_data(cfg, 324)
    assert text.startswith("PTC v2 train minus held-out (324 articles)")
    assert "span-labelled extra texts (semeval2021t6/train/spans.json)" in text
    assert "texts labelled without spans (semeval2024t4/train/memes.json)" in text
    assert "weight average of 2 runs" in text
    assert _training_data(TrainConfig(), 10) == "PTC v2 train minus held-out (10 articles)"
