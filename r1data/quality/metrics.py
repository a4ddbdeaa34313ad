"""Classification metrics for model cards and benchmarks (no scikit-learn needed)."""

from __future__ import annotations

import numpy as np


def roc_auc(positive_scores, negative_scores) -> float:
    """Probability that a random positive scores higher than a random negative (ties count half).

    The Mann-Whitney U statistic over average ranks: exact, O(n log n)."""
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("ROC AUC needs at least one positive and one negative score")
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    sorted_v = allv[order]
    ranks = np.empty(allv.size, dtype=np.float64)
    # average rank of each tie group (1-based)
    _, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def binary_report(positive_scores, negative_scores, threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of "score >= threshold means positive", plus ROC AUC."""
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    tp = int((pos >= threshold).sum())
    fn = int(pos.size - tp)
    fp = int((neg >= threshold).sum())
    tn = int(neg.size - fp)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "positives": int(pos.size),
        "negatives": int(neg.size),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "accuracy": round((tp + tn) / max(1, pos.size + neg.size), 4),
        "roc_auc": round(roc_auc(pos, neg), 4),
    }
