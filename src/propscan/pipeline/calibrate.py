"""Calibration: a detector's evidence (a probability-like number in [0, 1]) -> the probability that
annotators marked an overlapping span of the same technique.

One Platt map per technique, ``p = sigmoid(a_t * logit(evidence) + b_t)``, fitted on the tuning
articles (held-out PTC train and PTC dev). Rare techniques have few spans there, so each technique's (a_t, b_t) is shrunk
towards one pooled (a, b) by an L2 penalty: a technique with little data gets the pooled curve, one
with much data its own. The map is monotone (a_t > 0), so a cutoff on the calibrated probability is
also a cutoff on the evidence (``inverse``), which is how the decoder turns a confidence the user asks
for into the token threshold it runs at.

numpy only: the runtime applies the maps, training/tune.py fits them.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-4
# The L2 penalty tying each technique's map to the pooled one, per unit of deviation: fit()'s default.
# training/tune.py picks it by log-loss over 5 folds of the tuning articles; for the shipped model
# (scripts/retune_model.py, 2026-12-01.5, 122 articles): 0.1 -> 0.5277, 0.3 -> 0.5259, 1 -> 0.5248,
# 3 -> 0.5239, 10 -> 0.5246, so 3 (model.json; 2026-12-01.4 had picked 10 on older runtime outputs).
SHRINK = 3.0
MIN_SLOPE = 0.05  # keeps the map increasing, so it can be inverted


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.minimum(np.maximum(np.asarray(p, dtype=np.float64), EPS), 1 - EPS)  # np.clip's values, less overhead
    return np.log(p / (1 - p))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


class Calibration:
    """Per-technique Platt maps: ``{technique: (a, b)}``."""

    def __init__(self, coef: dict[str, list[float]] | None):
        self.coef = {t: (float(a), float(b)) for t, (a, b) in (coef or {}).items()}

    def __call__(self, technique: str, evidence: np.ndarray | float) -> np.ndarray:
        if technique not in self.coef:  # an uncalibrated model: the evidence is all we have
            return np.clip(np.asarray(evidence, dtype=np.float64), 0.0, 1.0)
        a, b = self.coef[technique]
        return sigmoid(a * logit(evidence) + b)

    def inverse(self, technique: str, p: float) -> float:
        """The evidence whose calibrated probability is ``p``."""
        if technique not in self.coef:
            return float(p)
        if p <= 0.0:
            return 0.0
        if p >= 1.0:
            return 1.0
        a, b = self.coef[technique]
        return float(sigmoid((float(logit(p)) - b) / a))

    def each(self, techniques: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        """The calibrated probability of every (technique, evidence) row."""
        return np.array([float(self(t, e)) for t, e in zip(techniques, evidence)], dtype=np.float64)

    def to_json(self) -> dict[str, list[float]]:
        return {t: [round(a, 5), round(b, 5)] for t, (a, b) in self.coef.items()}


def fit(evidence: np.ndarray, correct: np.ndarray, technique: np.ndarray, techniques: list[str],
        shrink: float = SHRINK, iters: int = 50) -> Calibration:
    """Fit the shrunk per-technique Platt maps by Newton's method on the penalised log-loss.

    Parameters: pooled (a, b) and each technique's deviation (da_t, db_t), penalised by ``shrink``.
    """
    x = logit(evidence)
    y = np.asarray(correct, dtype=np.float64)
    k = len(techniques)
    idx = np.array([techniques.index(t) for t in technique], dtype=np.int64) if len(technique) else np.zeros(0, np.int64)
    n = len(x)
    # design: [x, 1, x*onehot (k), onehot (k)]
    X = np.zeros((n, 2 + 2 * k))
    X[:, 0], X[:, 1] = x, 1.0
    X[np.arange(n), 2 + idx] = x
    X[np.arange(n), 2 + k + idx] = 1.0
    pen = np.r_[1e-3, 1e-3, np.full(2 * k, shrink)]
    w = np.zeros(2 + 2 * k)
    w[0] = 1.0

    def objective(w: np.ndarray) -> float:
        z = X @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(pen * w * w))

    for _ in range(iters):
        p = sigmoid(X @ w)
        grad = X.T @ (p - y) + pen * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        # backtracking: a full Newton step can overshoot where a technique's spans are all right or all wrong
        t, before = 1.0, objective(w)
        while objective(w - t * step) > before and t > 1e-6:
            t /= 2
        w -= t * step
        if np.abs(t * step).max() < 1e-8:
            break
    coef = {}
    for i, t in enumerate(techniques):
        a, b = w[0] + w[2 + i], w[1] + w[2 + k + i]
        if a < MIN_SLOPE:  # the evidence does not rank this technique's spans: the map is flat, and its
            # intercept is fitted again for that slope (the one fitted beside a lower slope would be off)
            a, b = MIN_SLOPE, _intercept(x[idx == i], y[idx == i], MIN_SLOPE, w[1], shrink, b)
        coef[t] = [a, b]
    return Calibration(coef)


def _intercept(x: np.ndarray, y: np.ndarray, a: float, pooled: float, shrink: float, b: float, iters: int = 50) -> float:
    """The intercept b minimising one technique's log-loss of sigmoid(a * x + b) at the fixed slope ``a``, with
    fit()'s penalty tying it to the pooled intercept (Newton's method; the objective is convex in b)."""
    for _ in range(iters):
        p = sigmoid(a * x + b)
        step = (np.sum(p - y) + shrink * (b - pooled)) / (np.sum(p * (1 - p)) + shrink)
        b -= step
        if abs(step) < 1e-10:
            break
    return float(b)


def log_loss(cal: Calibration, evidence: np.ndarray, correct: np.ndarray, technique: np.ndarray) -> float:
    p = np.clip(cal.each(technique, evidence), EPS, 1 - EPS)
    y = np.asarray(correct, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if len(p) else 0.0


def _bins(scores: np.ndarray, bins: int) -> list[tuple[float, float, np.ndarray]]:
    """The non-empty equal-width bins of ``scores``: (low, high, selection); 1.0 falls in the last."""
    out = []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        sel = (scores >= lo) & ((scores < hi) if i < bins - 1 else (scores <= hi))
        if sel.any():
            out.append((lo, hi, sel))
    return out


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, list[tuple[float, float, int, float, float]]]:
    """Expected calibration error over ``bins`` equal-width bins, and the table behind it:
    (bin low, bin high, count, mean score, share correct) per non-empty bin."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    table, ece = [], 0.0
    for lo, hi, sel in _bins(scores, bins):
        conf, acc = float(scores[sel].mean()), float(correct[sel].mean())
        ece += sel.sum() / len(scores) * abs(conf - acc)
        table.append((lo, hi, int(sel.sum()), conf, acc))
    return ece, table


def ece_floor(scores: np.ndarray, bins: int = 10, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The expected calibration error that a perfectly calibrated model with these very confidences would
    show by chance: each span right with probability equal to its confidence, drawn ``draws`` times;
    (mean, 95th percentile) of reliability()'s ECE over the draws. A bin of a few hundred spans has a
    noisy share right, so a measured ECE near this floor is as small as this many spans can show, and
    two models' ECEs closer than its spread are not told apart by it."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return 0.0, 0.0
    right = np.random.default_rng(seed).random((draws, len(scores))) < scores
    ece = np.zeros(draws)
    for _, _, sel in _bins(scores, bins):
        ece += sel.sum() / len(scores) * np.abs(scores[sel].mean() - right[:, sel].mean(axis=1))
    return float(ece.mean()), float(np.quantile(ece, 0.95))
