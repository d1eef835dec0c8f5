"""Bootstrap confidence intervals of holdout metrics, computed for many resamples at once.

A resample is a row of counts (how often each holdout row was drawn), so a batch of resamples is
a matrix `W` (resamples x rows) and every metric is a few matrix products with per-row vectors
computed once: confusion cells, sorted-score groups for ROC AUC, per-row losses and errors.
The same functions give metrics of row subsets (a slice is a 0/1 row of `W`), which is how
slices are scored. The positive class of a binary task is `classes[positive]` (default the second, as in
`metrics.score`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

__all__ = ["RESAMPLES", "bootstrap_weights", "intervals", "weighted_metrics"]

RESAMPLES = 1000  # percentile intervals at 0.95 settle to about 0.01 of their width by here
_CELLS = 4_000_000  # resample x row counts held at once (32 MB of float64)
_EPS = np.finfo(float).eps


def bootstrap_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Batches of bootstrap resamples of n rows: each row of a batch counts how often each row
    was drawn (n draws with replacement). Seeded: the same arguments give the same batches."""
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, _CELLS // max(n, 1)))
    done = 0
    while done < resamples:
        b = min(batch, resamples - done)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def weighted_metrics(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                     proba: np.ndarray | None, W: np.ndarray, positive: int = 1,
                     only: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric of the task (or those in `only`, and maybe a few more) for each row of
    weights `W` (r x n): one value per row.

    With `W` a single row of ones these equal `metrics.score`; a weight row without rows of
    some kind (no positives for ROC AUC, say) gives NaN for the metrics that need them.
    """
    if task == "regression":
        return _regression(y_true.astype(np.float64), np.asarray(y_pred, dtype=np.float64), W)
    return _classification(classes, y_true, y_pred, proba, W, positive, only)


def intervals(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
              proba: np.ndarray | None, *, confidence: float, seed: int, resamples: int = RESAMPLES,
              positive: int = 1, sample_weight: np.ndarray | None = None,
              only: frozenset[str] | None = None) -> dict[str, tuple[float, float]]:
    """A two-sided percentile bootstrap interval of every metric of the task: metric -> (low, high).
    NaN bounds when no resample gives the metric a value. With `sample_weight`, each drawn row
    counts its weight (the resamples are of rows, the metrics weighted as `metrics.score`'s)."""
    chunks: dict[str, list[np.ndarray]] = {}
    for W in bootstrap_weights(len(y_true), resamples, seed):
        if sample_weight is not None:
            W *= sample_weight
        for name, values in weighted_metrics(task, classes, y_true, y_pred, proba, W, positive, only).items():
            chunks.setdefault(name, []).append(values)
    tail = (1 - confidence) / 2
    out = {}
    for name, parts in chunks.items():
        values = np.concatenate(parts)
        values = values[~np.isnan(values)]
        out[name] = ((float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)))
                     if len(values) else (float("nan"), float("nan")))
    return out


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = np.nan) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _regression(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    err = p - y
    total = W.sum(axis=1)
    sse, sae = W @ (err * err), W @ np.abs(err)
    sy, syy = W @ y, W @ (y * y)
    ss_tot = syy - _ratio(sy * sy, total)
    # Numerical noise of a constant target: the spread is zero, and r2 undefined (NaN).
    ss_tot = np.where(ss_tot > 1e-12 * np.maximum(syy, 1e-300), ss_tot, 0.0)
    out = {"rmse": np.sqrt(_ratio(sse, total)), "mae": _ratio(sae, total), "r2": 1 - _ratio(sse, ss_tot),
           "mape": _ratio(W @ (np.abs(err) / np.maximum(np.abs(y), _EPS)), total)}
    if np.all(y >= 0):  # as in metrics.score: rmsle only for a target without negative values
        log_err = np.log1p(np.clip(p, 0, None)) - np.log1p(y)
        out["rmsle"] = np.sqrt(_ratio(W @ (log_err * log_err), total))
    return out


def _indicator(codes: np.ndarray, width: int) -> sparse.csr_matrix:
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, width))


def _times(W: np.ndarray, S: sparse.csr_matrix) -> np.ndarray:
    """W @ S for dense W (r x n) and sparse S (n x m), as a dense array."""
    return np.asarray((S.T @ W.T).T)


def _index(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's position in `classes`; len(classes) for a value not among them."""
    lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    return np.fromiter((lookup.get(v, len(lookup)) for v in np.asarray(values).tolist()), dtype=np.int64,
                       count=len(values))


def _classification(classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                    proba: np.ndarray | None, W: np.ndarray, positive: int,
                    only: frozenset[str] | None) -> dict[str, np.ndarray]:
    k = len(classes)
    size = k + 1  # the last code: a label the model never saw (always wrong)
    t, p = _index(classes, y_true), _index(classes, y_pred)
    confusion = _times(W, _indicator(t * size + p, size * size)).reshape(len(W), size, size)
    total = confusion.sum(axis=(1, 2))
    out = {"accuracy": _ratio(np.trace(confusion[:, :k, :k], axis1=1, axis2=2), total)}
    tp = np.diagonal(confusion, axis1=1, axis2=2)[:, :k]
    predicted, actual = confusion.sum(axis=1)[:, :k], confusion.sum(axis=2)[:, :k]
    precision, recall = _ratio(tp, predicted, 0.0), _ratio(tp, actual, 0.0)
    f1 = _ratio(2 * precision * recall, precision + recall, 0.0)
    if k == 2:
        out |= {"precision": precision[:, positive], "recall": recall[:, positive], "f1": f1[:, positive]}
    else:
        present = (predicted + actual) > 0  # scikit-learn's macro average: labels seen in either
        count = present.sum(axis=1)
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[name] = _ratio((values * present).sum(axis=1), count)
    wanted = only or frozenset({"roc_auc", "average_precision", "log_loss"})
    if proba is not None and wanted & {"roc_auc", "average_precision"}:  # the costly part: a sort
        out["roc_auc"], out["average_precision"] = _ranking(t, proba, k, W, positive)
    if proba is not None and "log_loss" in wanted:
        p_true = np.full(len(t), _EPS)
        seen = t < k
        p_true[seen] = proba[np.flatnonzero(seen), t[seen]]
        loss = -np.log(np.clip(p_true, _EPS, 1 - _EPS))
        out["log_loss"] = _ratio(W @ loss, total)
    return out


def _ranking(t: np.ndarray, proba: np.ndarray, k: int, W: np.ndarray,
             positive: int) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision: of the positive class (binary), else the macro average
    over the classes present in each resample (as `metrics.score`)."""
    columns = [positive] if k == 2 else list(range(k))
    pairs = [_binary_ranking(t == c, proba[:, c], W) for c in columns]
    return _present_mean([a for a, _ in pairs]), _present_mean([p for _, p in pairs])


def _present_mean(values: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(values, axis=1)
    valid = ~np.isnan(stacked)
    return _ratio(np.where(valid, stacked, 0.0).sum(axis=1), valid.sum(axis=1))


def _binary_ranking(positive: np.ndarray, score: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Mann-Whitney AUC (ties count one half) and average precision (scikit-learn's
    step sum over distinct thresholds) per weight row; the scores are sorted once. A weight
    row without positives (or, for AUC, without negatives) gives NaN: the class is absent."""
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    Ws = W[:, order]
    pos = Ws * positive[order]
    neg = Ws - pos
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    if len(starts) < len(ranked):  # tied scores: one threshold per distinct score
        pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    auc = _ratio((pos * (below + 0.5 * neg)).sum(axis=1), total_pos * total_neg)
    # Thresholds from the highest score down: precision at each, weighted by the recall gained.
    hits = np.cumsum(pos[:, ::-1], axis=1)
    called = hits + np.cumsum(neg[:, ::-1], axis=1)
    precision = _ratio(hits, called, 0.0)
    ap = _ratio((pos[:, ::-1] * precision).sum(axis=1), total_pos)
    return auc, ap
