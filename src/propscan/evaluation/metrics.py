"""SemEval-2020 Task 11 (PTC corpus) scoring, re-implemented with the stdlib only.

Mirrors the organisers' task-SI / task-FLC scorers:

* SI  (span identification): spans are sets of character indices; within an
  article overlapping spans are merged, then every (pred, gold) pair earns
  partial credit |s∩t|/|s| towards precision and |s∩t|/|t| towards recall.
* FLC (fragment-level classification): the same, but only spans sharing a
  technique are merged or compared; micro scores sum numerators and
  denominators over techniques.
* TC  (technique classification on given spans): multiset matching of
  technique labels per (article, start, end).

Inputs are plain tuples so this module has no dependency on the rest of the
package:

* SI rows:     ``(article_id, start, end)``
* FLC/TC rows: ``(article_id, technique, start, end)``

Offsets are character offsets, ``end`` exclusive.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

Span = tuple[int, int]
SILabel = tuple[str, int, int]
FLCLabel = tuple[str, str, int, int]

__all__ = ["PRF", "prf", "si_score", "flc_score", "flc_counts", "tc_score", "merge_overlapping"]


@dataclass(frozen=True)
class PRF:
    """Precision / recall / F1 plus the denominators they were computed from."""

    precision: float
    recall: float
    f1: float
    n_pred: int
    n_gold: int

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- helpers


def _safe_div(num: float, den: float) -> float:
    # The official scorers report 0 rather than failing on empty sides.
    return num / den if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def prf(prec_num: float, n_pred: int, rec_num: float, n_gold: int) -> PRF:
    """The scores from their sums: precision credit, predicted spans, recall credit, gold spans."""
    p = _safe_div(prec_num, n_pred)
    r = _safe_div(rec_num, n_gold)
    return PRF(precision=p, recall=r, f1=_f1(p, r), n_pred=n_pred, n_gold=n_gold)


def merge_overlapping(spans: list[Span]) -> list[Span]:
    """Merge spans that share at least one character index; return them sorted.

    Empty/inverted spans (start >= end) are dropped: as index sets they are
    empty. Touching spans such as (0, 5) and (5, 8) share no index, so they
    stay separate (the official scorer merges on set intersection only).
    """
    merged: list[Span] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans if int(s) < int(e)):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersection(a: Span, b: Span) -> int:
    # |range(a) ∩ range(b)| for contiguous ranges, without building sets.
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _pair_credit(gold: list[Span], pred: list[Span]) -> tuple[float, float]:
    """Precision and recall numerators summed over ALL (pred, gold) pairs.

    Summing over all pairs (not best match) is what the organisers do: a
    prediction covering two gold spans earns recall credit from both.
    """
    prec_num = 0.0
    rec_num = 0.0
    for s in pred:
        for t in gold:
            inter = _intersection(s, t)
            if inter:
                prec_num += inter / (s[1] - s[0])
                rec_num += inter / (t[1] - t[0])
    return prec_num, rec_num


def _merged_by_key(rows: Iterable[tuple[Hashable, int, int]]) -> dict[Hashable, list[Span]]:
    """Group (key, start, end) rows by key and merge overlaps within each key."""
    grouped: dict[Hashable, list[Span]] = defaultdict(list)
    for key, start, end in rows:
        grouped[key].append((int(start), int(end)))
    return {key: merge_overlapping(spans) for key, spans in grouped.items()}


def _span_counts(
    gold: dict[Hashable, list[Span]], pred: dict[Hashable, list[Span]]
) -> tuple[float, int, float, int]:
    """(prec_num, n_pred, rec_num, n_gold) over all keys of either side.

    Keys present on one side only still contribute their spans to that side's
    denominator, which is how missing articles are penalised.
    """
    prec_num = rec_num = 0.0
    for key in gold.keys() & pred.keys():
        p, r = _pair_credit(gold[key], pred[key])
        prec_num += p
        rec_num += r
    n_pred = sum(len(v) for v in pred.values())
    n_gold = sum(len(v) for v in gold.values())
    return prec_num, n_pred, rec_num, n_gold


def _technique_list(
    techniques: Sequence[str] | None, gold: Iterable[FLCLabel], pred: Iterable[FLCLabel]
) -> list[str]:
    if techniques is not None:
        return list(dict.fromkeys(techniques))  # de-duplicate, keep order
    return sorted({row[1] for row in gold} | {row[1] for row in pred})


# ---------------------------------------------------------------- public API


def si_score(gold: Iterable[SILabel], pred: Iterable[SILabel]) -> PRF:
    """Span-identification score (task SI)."""
    gold_spans = _merged_by_key((a, s, e) for a, s, e in gold)
    pred_spans = _merged_by_key((a, s, e) for a, s, e in pred)
    return prf(*_span_counts(gold_spans, pred_spans))


def flc_counts(gold: Iterable[FLCLabel], pred: Iterable[FLCLabel]) -> dict[tuple[str, str], tuple[float, int, float, int]]:
    """Per (article, technique): (precision credit, predicted spans, recall credit, gold spans), the
    sums task FLC divides. They add up over any set of keys, so the scores of a subset of articles
    need no second pass over the spans (training/tune.py chooses settings on folds so)."""
    # Spans are merged and compared only within the same (article, technique).
    gold_spans = _merged_by_key(((a, t), s, e) for a, t, s, e in gold)
    pred_spans = _merged_by_key(((a, t), s, e) for a, t, s, e in pred)
    counts = {}
    for key in gold_spans.keys() | pred_spans.keys():
        g, p = gold_spans.get(key, []), pred_spans.get(key, [])
        prec_num, rec_num = _pair_credit(g, p)
        counts[key] = (prec_num, len(p), rec_num, len(g))
    return counts


def flc_score(
    gold: Iterable[FLCLabel],
    pred: Iterable[FLCLabel],
    techniques: Sequence[str] | None = None,
) -> tuple[PRF, dict[str, PRF]]:
    """Fragment-level classification score (task FLC): (micro, per technique).

    ``techniques`` only selects the keys of the per-technique dict (zeros for
    techniques with no rows); the micro score always covers every row given.
    """
    gold = list(gold)
    pred = list(pred)
    # Per-technique (prec_num, n_pred, rec_num, n_gold): the per-key sums added up.
    counts: dict[str, list] = defaultdict(lambda: [0.0, 0, 0.0, 0])
    for (_, tech), c in flc_counts(gold, pred).items():
        counts[tech] = [x + y for x, y in zip(counts[tech], c)]

    # Micro: numerators and denominators summed over techniques.
    micro = prf(*(sum(c[i] for c in counts.values()) for i in range(4)))
    per_tech = {
        tech: prf(*counts.get(tech, (0.0, 0, 0.0, 0)))
        for tech in _technique_list(techniques, gold, pred)
    }
    return micro, per_tech


def tc_score(
    gold: Iterable[FLCLabel],
    pred: Iterable[FLCLabel],
    techniques: Sequence[str] | None = None,
) -> tuple[PRF, dict[str, PRF]]:
    """Technique-classification score (task TC): (micro, per technique).

    Rows are matched by exact (article, start, end); each such span carries a
    multiset of techniques, so a span annotated twice can earn two credits.
    ``techniques`` only selects the keys of the per-technique dict.
    """
    gold = list(gold)
    pred = list(pred)
    gold_groups: dict[tuple[str, int, int], Counter[str]] = defaultdict(Counter)
    pred_groups: dict[tuple[str, int, int], Counter[str]] = defaultdict(Counter)
    for a, t, s, e in gold:
        gold_groups[(a, int(s), int(e))][t] += 1
    for a, t, s, e in pred:
        pred_groups[(a, int(s), int(e))][t] += 1

    # Multiset intersection per span; `&` keeps min counts per technique.
    credit: Counter[str] = Counter()
    for key in gold_groups.keys() & pred_groups.keys():
        credit.update(gold_groups[key] & pred_groups[key])
    n_pred_t = Counter(row[1] for row in pred)
    n_gold_t = Counter(row[1] for row in gold)

    total = sum(credit.values())
    micro = prf(total, len(pred), total, len(gold))
    per_tech = {
        tech: prf(credit[tech], n_pred_t[tech], credit[tech], n_gold_t[tech])
        for tech in _technique_list(techniques, gold, pred)
    }
    return micro, per_tech
