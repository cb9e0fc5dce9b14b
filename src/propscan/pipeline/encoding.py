"""Tokenisation and windowing shared by training and inference.

Articles are tokenised once without special tokens; the model then sees overlapping windows
``[CLS] tokens[a:b] [SEP]`` so that every token of an article of any length is covered. Offsets come
from the tokenizer's offset mapping (code points into the text as given) and are never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

# Window and stride in word pieces. 254 content tokens + [CLS]/[SEP] = 256, the length the model was
# trained at; a stride of 192 leaves 62 tokens of overlap so each token is read with >= 31 tokens of
# context on both sides. Not swept: the one alternative measured (evenly spread, narrower windows with
# the same overlap, benchmarks/quality.py + speed.py on PTC dev/test) gave SI +0.009, TC -0.008 and no speed gain.
WINDOW = 254
STRIDE = 192


@dataclass
class Encoded:
    ids: np.ndarray  # (n,) int64 word-piece ids, no special tokens
    offsets: np.ndarray  # (n, 2) int64 code-point offsets into the text, end exclusive
    word_start: np.ndarray  # (n,) bool: the token starts a new word (not a ## continuation)

    def __len__(self) -> int:
        return len(self.ids)


def load_tokenizer(path: str | Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()  # windows do the splitting; truncation would silently drop text
    tok.no_padding()
    return tok


def special_ids(tok: Tokenizer) -> tuple[int, int, int]:
    """The start, end and padding ids a window is built with, read from the tokenizer itself.

    BERT-style encoders wrap a text as ``[CLS] x [SEP]``, RoBERTa/MPNet-style ones as ``<s> x </s>``
    (and pad with 1, not 0); asking the tokenizer's own post-processor keeps the encoder configurable.
    """
    plain = tok.encode("a", add_special_tokens=False).ids
    full = tok.encode("a", add_special_tokens=True).ids
    if len(full) != len(plain) + 2 or full[1:-1] != plain:
        raise ValueError("the tokenizer does not wrap a text in one start and one end token")
    # "<pad>" first: MPNet's vocabulary also holds BERT's "[PAD]" (id 4), but pads with "<pad>" (1)
    pad = next((i for name in ("<pad>", "[PAD]") if (i := tok.token_to_id(name)) is not None), 0)
    return full[0], full[-1], pad


def encode(tok: Tokenizer, text: str) -> Encoded:
    enc = tok.encode(text, add_special_tokens=False)
    ids = np.asarray(enc.ids, dtype=np.int64)
    offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
    words = enc.word_ids
    word_start = np.ones(len(ids), dtype=bool)
    for i in range(1, len(ids)):
        word_start[i] = words[i] != words[i - 1] or words[i] is None
    return Encoded(ids, offsets, word_start)


def overlapping(enc: Encoded, start: int, end: int) -> np.ndarray:
    """Boolean mask of the tokens overlapping the character span [start, end)."""
    return (enc.offsets[:, 0] < end) & (enc.offsets[:, 1] > start)


def token_range(enc: Encoded, start: int, end: int) -> tuple[int, int]:
    """Token range [a, b) of the tokens overlapping the character span [start, end); (-1, -1) if none."""
    return token_ranges(enc, [(start, end)])[0]


def token_ranges(enc: Encoded, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """token_range of each character span, by one binary search over all of them.

    A tokenizer's offsets are in text order (starts and ends both non-decreasing: checked over every
    PTC train and dev article with both encoders), and detection asks this for every mention of every
    repeated phrase of a text, where a scan over all tokens cost 7% of a run."""
    if not spans:
        return []
    starts, ends = np.array(spans, dtype=np.int64).reshape(-1, 2).T
    a = np.searchsorted(enc.offsets[:, 1], starts, side="right")  # first token ending after start
    b = np.searchsorted(enc.offsets[:, 0], ends, side="left")  # tokens starting before end
    return [(x, y) if x < y else (-1, -1) for x, y in zip(a.tolist(), b.tolist())]


def make_windows(n: int, size: int = WINDOW, stride: int = STRIDE, align_last: bool = True) -> list[tuple[int, int]]:
    """Half-open token ranges covering [0, n) completely.

    The last window is aligned to the end (full size), or with ``align_last`` False starts one stride
    after the one before it and is shorter: 7% fewer tokens to run on the 90 PTC test articles.
    """
    if n <= size:
        return [(0, n)] if n else []
    starts = list(range(0, n - size, stride))
    last = n - size if align_last else starts[-1] + stride
    return [(s, s + size) for s in starts] + [(last, n)]


def batch_windows(
    ids: np.ndarray, windows: list[tuple[int, int]], cls_id: int, sep_id: int, pad_id: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stack windows into padded (input_ids, attention_mask) arrays with [CLS]/[SEP]."""
    width = max(b - a for a, b in windows) + 2
    input_ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    for r, (a, b) in enumerate(windows):
        n = b - a
        input_ids[r, 0] = cls_id
        input_ids[r, 1 : n + 1] = ids[a:b]
        input_ids[r, n + 1] = sep_id
        mask[r, : n + 2] = 1
    return input_ids, mask


def centre_weights(windows: list[tuple[int, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each token, the window in which it sits farthest from an edge, and its row inside it.

    Tokens near a window edge see one-sided context; taking each token from its most central window
    gives every token the best context available.
    """
    best = np.full(n, -1, dtype=np.int64)
    pos = np.zeros(n, dtype=np.int64)
    margin = np.full(n, -1, dtype=np.int64)
    for w, (a, b) in enumerate(windows):
        idx = np.arange(a, b)
        m = np.minimum(idx - a, b - 1 - idx)
        better = m > margin[a:b]
        best[a:b][better] = w
        pos[a:b][better] = (idx - a + 1)[better]  # +1 skips [CLS]
        margin[a:b][better] = m[better]
    return best, pos
