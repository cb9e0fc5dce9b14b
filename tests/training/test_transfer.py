"""Distillation over unlabelled text (training/train.py): transfer sentences read from the formats the
shared data comes in, joined into passages, and the teacher's targets computed once and then read
from the cache. The teacher here is the real shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from propscan.pipeline import encoding
from propscan.pipeline.model import MODEL_DIR, Model
from propscan.training.train import (
    N_OUT,
    TrainConfig,
    teacher_cache_dir,
    transfer_examples,
    transfer_passages,
    transfer_sentences,
)


@pytest.fixture
def files(tmp_path):
    tsv = tmp_path / "debate.tsv"
    tsv.write_text('text\tlabel\nAnd welcome back.\t0\nThey will destroy "our" country.\t1\nAnd welcome back.\t0\n')
    js = tmp_path / "claims.json"
    js.write_text(json.dumps([{"sentence_id": 1, "label": 1, "text": "Crime is out of control in every city."}]))
    txt = tmp_path / "lines.txt"
    txt.write_text("Wake up, patriots!\n\n  They will destroy   \"our\" country.\n")
    return [str(tsv), str(js), str(txt)]


def test_sentences_come_in_order_once_each(files):
    assert transfer_sentences(files) == [
        "And welcome back.", 'They will destroy "our" country.', "Crime is out of control in every city.", "Wake up, patriots!",
    ]
    assert transfer_sentences(files, limit=2) == ["And welcome back.", 'They will destroy "our" country.']


def test_passages_join_neighbours_within_the_budget():
    tok = encoding.load_tokenizer(MODEL_DIR / "tokenizer.json")
    sentences = [f"Sentence number {k} says that the elites lie to you." for k in range(40)]
    passages = transfer_passages(tok, sentences, 60)
    assert " ".join(passages) == " ".join(sentences)
    assert all(len(encoding.encode(tok, p)) <= 60 for p in passages)
    assert len(passages) < len(sentences) / 3


def test_teacher_targets_are_computed_once_then_read_from_the_cache(files, tmp_path, monkeypatch):
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    teacher = Model(threads=1)
    tok = encoding.load_tokenizer(MODEL_DIR / "tokenizer.json")
    cfg = TrainConfig(transfer=files, teacher=str(MODEL_DIR))
    said = []
    first = transfer_examples(tok, cfg, teacher, said.append)
    assert "teacher targets of 1 computed and 0 read" in said[-1]
    assert len(list((teacher_cache_dir() / "texts").glob("*.npz"))) == 1
    second = transfer_examples(tok, cfg, teacher, said.append)
    assert "teacher targets of 0 computed and 1 read" in said[-1]
    assert len(first) == len(second) == 1  # four short sentences make one passage
    for a, b in zip(first, second):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels) and a.spans == b.spans == []
    ex = first[0]
    assert ex.labels.shape == (len(ex.ids), N_OUT)
    text = transfer_passages(tok, transfer_sentences(files), cfg.window)[0]
    want = teacher.token_outputs(text).probs  # same tokenizer: the targets are the teacher's own probabilities
    assert np.abs(ex.labels - want).max() < 1e-6  # kept in float32
    # another transfer set is another cache entry
    transfer_examples(tok, TrainConfig(transfer=files, transfer_limit=2, teacher=str(MODEL_DIR)), teacher, said.append)
    assert len(list((teacher_cache_dir() / "texts").glob("*.npz"))) == 2


def test_a_larger_transfer_set_computes_only_its_new_passages(tmp_path, monkeypatch):
    """Passages are packed in order, so the first N sentences' passages recur in a larger set: a study of
    transfer sizes runs the teacher once per passage, not once per size."""
    monkeypatch.setenv("PROPSCAN_CACHE_DIR", str(tmp_path / "cache"))
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"Speaker {k} says the corrupt elites lie to you every day.\n" for k in range(40)))
    teacher = Model(threads=1)
    tok = encoding.load_tokenizer(MODEL_DIR / "tokenizer.json")
    said = []
    small = transfer_examples(tok, TrainConfig(transfer=[str(lines)], transfer_limit=20, window=60, teacher="t"), teacher, said.append)
    large = transfer_examples(tok, TrainConfig(transfer=[str(lines)], window=60, teacher="t"), teacher, said.append)
    assert 3 <= len(small) < len(large)
    reused = sum(any(np.array_equal(a.ids, b.ids) for b in small) for a in large)
    assert reused >= len(small) - 1  # all but perhaps the small set's last, shorter passage
    assert f"teacher targets of {len(large) - reused} computed and {reused} read" in said[-1]
