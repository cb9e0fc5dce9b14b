"""The real shipped model: coverage of long texts, offsets, determinism, shift invariance, edge texts.

Only behaviour and invariants are checked, never the particular spans or scores of this model.
"""

from __future__ import annotations

import numpy as np
import pytest

from propscan.pipeline import encoding
from propscan.pipeline.analyze import analyze
from propscan.pipeline.decode import TRIM
from propscan.document import Analysis, Document
from propscan.pipeline.model import BATCH, MODEL_DIR
from propscan.techniques import TECHNIQUE_IDS

N_OUT = len(TECHNIQUE_IDS) + 1

NEUTRAL = (
    "Paragraph {i}. The city council met on Tuesday to discuss the annual budget for road maintenance and "
    "public parks. Members reviewed several proposals from the planning office and agreed to continue the "
    "discussion at the next regular meeting in the town hall."
)
LOADED_END = "These traitors and vile criminals are destroying our great nation!"
LOADED = (
    "These traitors and vile criminals are destroying our great nation! The so-called experts are lying "
    "to you, as always. Everyone knows the corrupt elite will never stop."
)
NON_ASCII = (
    "Le maire a été «irresponsable» 😡. C’est un scandale — 这是可耻的! "
    "The “shameful” traitors 👎🏽 ruined everything, naïvely. Ñandú café señor 🇫🇷"
)


def check_spans(a: Analysis) -> None:
    text = a.document.text
    for s in a.spans:
        assert 0 <= s.start < s.end <= len(text), s
        piece = text[s.start : s.end]
        assert piece == s.text_in(a.document)
        assert piece.strip() == piece, repr(piece)
        assert piece[0] not in TRIM and piece[-1] not in TRIM, repr(piece)
        assert s.technique in TECHNIQUE_IDS
        assert 0.0 <= s.score <= 1.0
    d = a.to_dict()
    assert all(sp["text"] == text[sp["start"] : sp["end"]] for sp in d["spans"])


def covered(spans, lo: int = 0, hi: int | None = None) -> set[int]:
    out: set[int] = set()
    for s in spans:
        out.update(range(max(s.start, lo), s.end if hi is None else min(s.end, hi)))
    return out


# ----------------------------------------------------------------------------------------------------------
# a long article: more than 5 windows, the loaded sentence at the very end


@pytest.fixture(scope="module")
def long_text() -> str:
    return "\n\n".join(NEUTRAL.format(i=i) for i in range(40)) + "\n\n" + LOADED_END


@pytest.fixture(scope="module")
def long_out(model, long_text):
    return model.token_outputs(long_text)


def test_long_text_needs_many_windows(long_out) -> None:
    assert len(encoding.make_windows(len(long_out.enc))) > 5


def test_token_outputs_shape_and_finite(model, long_out) -> None:
    n = len(long_out.enc)
    assert long_out.logits.shape == (n, N_OUT)
    assert long_out.hidden.shape[0] == n and long_out.hidden.ndim == 2
    assert np.isfinite(long_out.logits).all()
    assert np.isfinite(long_out.hidden).all()
    probs = long_out.probs
    assert ((probs >= 0) & (probs <= 1)).all()


def test_token_outputs_cover_every_token(model, long_out) -> None:
    n = len(long_out.enc)
    wins = model.windows(n)  # as the model's runtime block says
    best, pos = encoding.centre_weights(wins, n)
    assert (best >= 0).all()
    # the output arrays start at zero: a token no window wrote would keep an all-zero row
    assert not (long_out.logits == 0).all(axis=1).any()
    assert not (long_out.hidden == 0).all(axis=1).any()
    # each token's logits are those of its most central window (run in the same batches as token_outputs)
    for k in range(0, len(wins), BATCH):
        chunk = wins[k : k + BATCH]
        ids, mask = encoding.batch_windows(long_out.enc.ids, chunk, model.cls_id, model.sep_id)
        lg, hd = model.run_windows(ids, mask)
        sel = np.flatnonzero((best >= k) & (best < k + len(chunk)))
        assert len(sel)
        np.testing.assert_array_equal(long_out.logits[sel], lg[best[sel] - k, pos[sel]])
        np.testing.assert_array_equal(long_out.hidden[sel], hd[best[sel] - k, pos[sel]])
    assert best[-1] == len(wins) - 1  # the last token is read from the last window


def test_long_text_span_at_the_very_end(model, long_text) -> None:
    a = analyze(long_text, model=model, threshold=0.2)
    check_spans(a)
    last = long_text.rindex(LOADED_END)
    assert any(s.start >= last for s in a.spans), "no span in the last paragraph: text truncated?"
    assert a.sentences[-1].end == len(long_text)


# ----------------------------------------------------------------------------------------------------------
# offsets and invariants


@pytest.mark.parametrize("threshold", [None, 0.1, 0.3])
def test_span_offsets_are_text_slices(model, threshold) -> None:
    for text in (LOADED, "Title\r\n\r\n" + LOADED.replace(". ", ".\r\n"), "   " + LOADED + "\n\n"):
        check_spans(analyze(text, model=model, threshold=threshold))


def test_determinism(model) -> None:
    a = analyze(LOADED, model=model).to_dict()
    b = analyze(LOADED, model=model).to_dict()
    assert a == b
    o1, o2 = model.token_outputs(LOADED), model.token_outputs(LOADED)
    assert np.array_equal(o1.logits, o2.logits) and np.array_equal(o1.hidden, o2.hidden)


@pytest.mark.parametrize("prefix", ["   ", "\n\n", "\n\n\n\n\n", " \t \n"])
def test_whitespace_prefix_shifts_spans_exactly(model, prefix: str) -> None:
    """Whitespace makes no tokens: the model sees the same input, so spans shift by the prefix length
    (with cleaning on, a collapsed run of line breaks must be mapped back too)."""
    for threshold in (None, 0.2):
        base = analyze(LOADED, model=model, threshold=threshold)
        shifted = analyze(prefix + LOADED, model=model, threshold=threshold)
        check_spans(shifted)
        assert [(s.start + len(prefix), s.end + len(prefix), s.technique) for s in base.spans] == [
            (s.start, s.end, s.technique) for s in shifted.spans
        ]


@pytest.mark.parametrize("prefix", ["Opinion\n\n", "Hello.\n\n", "The weather was mild on Tuesday.\n\n"])
def test_text_after_a_prefix_gives_shifted_spans(model, prefix: str) -> None:
    """A real prefix changes the context the encoder sees, so allow small differences: the spans found in
    the text mostly reappear, shifted by the prefix length."""
    threshold = 0.2
    base = analyze(LOADED, model=model, threshold=threshold)
    shifted = analyze(prefix + LOADED, model=model, threshold=threshold)
    check_spans(shifted)
    assert base.spans, "no spans in a strongly loaded text at threshold 0.2"
    p = len(prefix)
    a = {i + p for i in covered(base.spans)}
    b = covered(shifted.spans, lo=p)
    assert len(a & b) / len(a | b) >= 0.5, (sorted(a ^ b))
    # most spans reappear with the same offsets, give or take one word piece at either end

    def near(s, t) -> bool:
        return abs(s.start + p - t.start) <= 4 and abs(s.end + p - t.end) <= 4
    found = sum(any(near(s, t) for t in shifted.spans) for s in base.spans)
    assert found >= len(base.spans) / 2
    assert {s.technique for s in base.spans} & {s.technique for s in shifted.spans}


def test_non_ascii_token_offsets(model) -> None:
    out = model.token_outputs(NON_ASCII)
    enc = out.enc
    assert len(enc) > 0
    toks = model.tokenizer.encode(NON_ASCII, add_special_tokens=False).tokens
    prev_end = 0
    for tok, (s, e) in zip(toks, enc.offsets.tolist()):
        assert 0 <= s < e <= len(NON_ASCII)
        assert s >= prev_end
        piece = NON_ASCII[s:e]
        assert piece.strip() == piece and piece
        if piece.isascii() and piece.isalpha():
            assert piece.lower() == tok.removeprefix("##")
        prev_end = e
    # every non-space character belongs to some token (offsets are code points, not bytes or UTF-16)
    tokened = set()
    for s, e in enc.offsets.tolist():
        tokened.update(range(s, e))
    for i, ch in enumerate(NON_ASCII):
        if not ch.isspace():
            assert i in tokened, (i, ch)


@pytest.mark.parametrize("threshold", [None, 0.0, 0.2])
def test_non_ascii_span_offsets(model, threshold) -> None:
    a = analyze(Document("x", NON_ASCII), model=model, threshold=threshold)
    check_spans(a)
    if threshold == 0.0:  # everything passes: the spans reach the last word, after non-BMP characters
        last = NON_ASCII.rindex("señor") + len("señor")  # the flag after it is no word: trimmed off
        assert max(s.end for s in a.spans) == last
        assert min(s.start for s in a.spans) == 0
    emoji_first = "😡👎🏽 " + LOADED
    check_spans(analyze(Document("y", emoji_first), model=model, threshold=threshold))


@pytest.mark.parametrize("text", ["", " ", "   \n\n\t  ", "\n\n\n\n\n", "\u00a0\u2003\n"])
def test_empty_or_blank_text(model, text: str) -> None:
    a = analyze(Document("blank", text), model=model)
    assert a.spans == []
    assert a.score == 0
    assert a.document.text == text
    assert all(s.end <= len(text) for s in a.sentences)


def test_empty_token_outputs(model) -> None:
    out = model.token_outputs("")
    assert out.logits.shape == (0, N_OUT)
    assert len(out.enc) == 0


def test_classify_spans_are_distributions(model) -> None:
    out = model.token_outputs(LOADED)
    n = len(out.enc)
    p = model.classify_spans(LOADED, out, [(0, 2), (3, n), (n - 1, n)])
    assert p.shape == (3, len(TECHNIQUE_IDS))
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert model.classify_spans(LOADED, out, []).shape == (0, len(TECHNIQUE_IDS))


# ----------------------------------------------------------------------------------------------------------
# the ONNX file against a fresh onnxruntime session


def test_onnx_matches_fresh_session(model) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(MODEL_DIR / model.config["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"]
    enc = encoding.encode(model.tokenizer, LOADED)
    n = len(enc)
    assert n <= encoding.WINDOW
    ids, mask = encoding.batch_windows(enc.ids, [(0, n)], model.cls_id, model.sep_id)
    fresh_logits, fresh_hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask})
    ours_logits, ours_hidden = model.run_windows(ids, mask)
    assert fresh_logits.shape == (1, n + 2, N_OUT)
    np.testing.assert_allclose(ours_logits, fresh_logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours_hidden, fresh_hidden, atol=1e-4, rtol=1e-4)
    # token_outputs of a one-window text is that window without [CLS]/[SEP]
    out = model.token_outputs(LOADED)
    np.testing.assert_allclose(out.logits, fresh_logits[0, 1 : n + 1], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out.hidden, fresh_hidden[0, 1 : n + 1], atol=1e-4, rtol=1e-4)
    assert ids[0, 0] == model.cls_id and ids[0, n + 1] == model.sep_id


def test_token_outputs_do_not_depend_on_distant_text(model, long_out) -> None:
    """The int8 graph quantises activations per tensor, so windows must run one per call: a window's
    result may not change because other, unrelated windows of the article ran in the same batch."""
    n = len(long_out.enc)
    text = model.tokenizer.decode(long_out.enc.ids.tolist())
    base = model.token_outputs(text)
    more = model.token_outputs(text + "\n" + " ".join(["The committee met on Tuesday to discuss the budget."] * 80))
    k = min(100, n)  # tokens that come from the first window in both runs
    np.testing.assert_allclose(base.logits[:k], more.logits[:k], atol=1e-5, rtol=1e-5)


def test_windows_side_by_side_give_the_one_at_a_time_outputs(long_text) -> None:
    """Windows run on a pool of single-threaded calls, in rounds; the result is the same, to the bit, as
    running them one after another, whatever the number of threads and however the rounds fall."""
    from propscan.pipeline.model import WINDOWS_SIDE_BY_SIDE, Model

    one, two, three = (Model(threads=k) for k in (1, 2, 3))
    ref = one.token_outputs(long_text)
    assert len(encoding.make_windows(len(ref.enc))) > WINDOWS_SIDE_BY_SIDE * 2  # more than one round at 2 threads
    for m in (two, three):
        out = m.token_outputs(long_text)
        assert m._pool is not None and m._pool._threads, "the windows did not run side by side"
        np.testing.assert_array_equal(out.logits, ref.logits)
        np.testing.assert_array_equal(out.hidden, ref.hidden)
    assert one._pool is None


def test_texts_side_by_side_never_run_more_calls_than_threads(long_text) -> None:
    """The CLI analyses texts side by side; however their windows fall, at most ``threads`` onnxruntime
    calls run at once (one per core), short one-window texts included."""
    import threading

    from propscan.pipeline.analyze import in_order
    from propscan.pipeline.model import Model

    model = Model(threads=2)
    real, lock, live, peak = model.session, threading.Lock(), [0], [0]

    class Counting:
        def run(self, *a, **kw):
            with lock:
                live[0] += 1
                peak[0] = max(peak[0], live[0])
            try:
                return real.run(*a, **kw)
            finally:
                with lock:
                    live[0] -= 1

    model.session = Counting()
    texts = ["Short text number %d about the budget." % i for i in range(12)] + [long_text] + ["One more short text."] * 6
    outs = [f.result() for _, f in in_order(model.token_outputs, texts, ahead=3)]
    assert peak[0] == 2
    assert len(outs) == len(texts) and len(outs[12].enc) == len(model.token_outputs(long_text).enc)


# ----------------------------------------------------------------------------------------------------------
# model.json "runtime": how a model's network is run belongs to the model


def with_runtime(folder, runtime: dict | None):
    """The shipped model's files in ``folder`` (copied once), its model.json given this "runtime" block
    (None: none, as a model from before the block)."""
    import json
    import shutil

    if not folder.exists():
        shutil.copytree(MODEL_DIR, folder)
    config = {k: v for k, v in json.loads((MODEL_DIR / "model.json").read_text()).items() if k != "runtime"}
    (folder / "model.json").write_text(json.dumps(config if runtime is None else {**config, "runtime": runtime}))
    return folder


@pytest.fixture(scope="module")
def short_runtime_model(tmp_path_factory):
    """The shipped network under the settings new int8 models are tuned with (training/build.INT8_RUNTIME)."""
    from propscan.pipeline.model import Model
    from propscan.training.build import INT8_RUNTIME

    return Model(with_runtime(tmp_path_factory.mktemp("runtime") / "m", INT8_RUNTIME), threads=1)


@pytest.fixture(scope="module")
def plain_runtime_model(tmp_path_factory):
    """The shipped network without a runtime block in its model.json, as models from before the block."""
    from propscan.pipeline.model import Model

    return Model(with_runtime(tmp_path_factory.mktemp("plain") / "m", None), threads=1)


def test_a_model_without_a_runtime_block_runs_as_before(plain_runtime_model) -> None:
    from propscan.pipeline.model import RUNTIME_DEFAULTS

    assert "runtime" not in plain_runtime_model.config and plain_runtime_model.runtime == RUNTIME_DEFAULTS
    assert plain_runtime_model.windows(1000) == encoding.make_windows(1000)


def test_a_runtime_block_sets_the_windows_and_the_graph_fusions(plain_runtime_model, short_runtime_model, long_text) -> None:
    m = short_runtime_model
    out = m.token_outputs(long_text)
    n = len(out.enc)
    wins = m.windows(n)
    assert wins == encoding.make_windows(n, align_last=False) != encoding.make_windows(n)
    # the last tokens are read from the short last window
    ids, mask = encoding.batch_windows(out.enc.ids, wins[-1:], m.cls_id, m.sep_id)
    lg, _ = m.run_windows(ids, mask)
    np.testing.assert_array_equal(out.logits[-5:], lg[0, -6:-1])
    # without SkipLayerNormFusion the int8 arithmetic differs: the same window gives other logits
    ids, mask = encoding.batch_windows(out.enc.ids, wins[:1], m.cls_id, m.sep_id)
    assert np.abs(m.run_windows(ids, mask)[0] - plain_runtime_model.run_windows(ids, mask)[0]).max() > 1e-3


def test_the_shipped_graph_has_the_mask_bias_its_runtime_block_says() -> None:
    """A graph without the bias must never run padded windows, and one with it was tuned with it: the
    model.json's "padding_bias" and the graph agree."""
    onnx = pytest.importorskip("onnx", reason="onnx comes with the train extra")
    from propscan.pipeline.model import Model
    from propscan.training.export import drop_padding_bias

    has_bias = drop_padding_bias(onnx.load(MODEL_DIR / "model.onnx")) > 0
    assert Model(MODEL_DIR, threads=1).runtime["padding_bias"] == has_bias


def test_a_runtime_stride_sets_how_far_windows_overlap(tmp_path, long_text) -> None:
    """"stride": encoding.WINDOW reads a text in windows that do not overlap; every token still gets outputs."""
    from propscan.pipeline.model import Model

    m = Model(with_runtime(tmp_path / "m", {"last_window": "short", "stride": encoding.WINDOW}), threads=1)
    out = m.token_outputs(long_text)
    n = len(out.enc)
    wins = m.windows(n)
    assert len(wins) > 2 and all(b == c for (_, b), (c, _) in zip(wins, wins[1:])) and wins[-1][1] == n
    assert len(wins) < len(encoding.make_windows(n, align_last=False))
    assert out.logits.shape[0] == n and np.abs(out.logits).sum(-1).min() > 0  # no token left without outputs


def test_a_model_without_the_mask_bias_refuses_padded_windows(short_runtime_model) -> None:
    m = short_runtime_model
    enc = encoding.encode(m.tokenizer, LOADED)
    ids, mask = encoding.batch_windows(enc.ids, [(0, 10), (0, len(enc))], m.cls_id, m.sep_id)
    with pytest.raises(ValueError, match="unpadded windows only"):
        m.run_windows(ids, mask)


def test_an_unknown_runtime_setting_is_a_one_line_model_error(tmp_path) -> None:
    from propscan.errors import ModelError
    from propscan.pipeline.model import Model

    for bad in ({"last_window": "middle"}, {"batch": 8}, {"stride": 0}, {"stride": 300}, {"stride": "192"}, {"stride": True}):
        with pytest.raises(ModelError, match="runtime") as err:
            Model(with_runtime(tmp_path / "m", bad), threads=1)
        assert "\n" not in str(err.value)
