"""Training data preparation (no torch needed): token labels and the masking of out-of-inventory spans."""

import json
from pathlib import Path

import numpy as np

from propscan import encoding
from propscan.model import MODEL_DIR
from propscan.train import ANY, TrainConfig, extra_examples

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
