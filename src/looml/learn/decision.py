"""Calibration and the decision threshold: the model step's probabilities recalibrated and a
binary task's labels cut at a threshold, both learned from out-of-fold predictions.

    DecisionModel(estimator, calibration="auto", objective="f1").fit(X, y)

`DecisionModel` is the model step of the registered pipeline when `evaluation.calibration` or
`evaluation.threshold` asks for either. Its `fit` sees only the rows it is given (in a looml
run, the training split after the fitted feature steps): it predicts them out of fold with
`folds` stratified folds, fits the calibrator on those predictions, chooses the threshold on the
calibrated ones, and then fits the model on all the rows. So the holdout never informs either,
and `predict` (what evaluate, `looml predict`, the server and the MLflow pyfunc model call)
applies the threshold: `classes_[pos]` where `predict_proba(X)[:, pos] >= threshold_`.

Calibrators are kept as plain arrays (`calibrators_`: per calibrated column, ("sigmoid", [a, b])
for p' = expit(a * logit(p) + b), or ("isotonic", [x, y]) for p' = interp(p, x, y)), so the
compiled scorer reproduces them with the same two numpy lines (`apply_calibration`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from looml.spec import EvaluationSpec

__all__ = ["AUTO_GAIN", "ISOTONIC_ROWS", "OBJECTIVES", "DecisionModel", "apply_calibration",
           "choose_threshold", "decide", "decision_of", "objective_values", "threshold_of", "wrap_decision"]

OBJECTIVES = ("f1", "balanced_accuracy", "accuracy", "mcc", "precision", "recall")
AUTO_GAIN = 0.01  # auto calibrates when the cross-validated log loss drops by at least 1 % (relative)
ISOTONIC_ROWS = 1_000  # auto tries isotonic from this many rows (below it, isotonic overfits)
_EPS = 1e-12


def wrap_decision(model: Any, evaluation: EvaluationSpec, n_classes: int, positive_class: Any, folds: int,
                  seed: int) -> Any:
    """The model step inside a `DecisionModel` when the spec asks for calibration or a threshold
    (`model` itself otherwise)."""
    threshold = evaluation.threshold if n_classes == 2 else None
    if evaluation.calibration == "none" and threshold is None:
        return model
    return DecisionModel(model, calibration=evaluation.calibration,
                         objective=threshold.optimize if threshold else None,
                         min_recall=threshold.min_recall if threshold else None,
                         min_precision=threshold.min_precision if threshold else None,
                         costs=threshold.costs if threshold else None, pos_label=positive_class,
                         folds=folds, random_state=seed)


def objective_values(y_positive: np.ndarray, p: np.ndarray, objective: str | None = None,
                     min_recall: float | None = None, min_precision: float | None = None,
                     costs: Any = None, sample_weight: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(candidate cuts, the objective at each, larger is better): predicting positive where
    p >= cut, for every distinct value of `p` (highest first). A cost matrix gives minus the
    total cost; precision / recall give -inf where the other side's floor is not met."""
    w = np.ones(len(p)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    order = np.argsort(-p, kind="stable")
    ps, pos, ws = p[order], y_positive[order].astype(bool), w[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # the end of each run of equal values
    tp = np.cumsum(ws * pos)[last]
    fp = np.cumsum(ws * ~pos)[last]
    P, N = float((ws * pos).sum()), float((ws * ~pos).sum())
    fn, tn = P - tp, N - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / P if P else np.zeros_like(tp)
        if costs is not None:
            c = np.asarray(costs, dtype=float)
            value = -(c[0, 0] * tn + c[0, 1] * fp + c[1, 0] * fn + c[1, 1] * tp)
        elif objective == "f1":
            value = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        elif objective == "accuracy":
            value = (tp + tn) / (P + N)
        elif objective == "balanced_accuracy":
            value = ((tp / P if P else 0.0) + (tn / N if N else 0.0)) / 2
        elif objective == "mcc":
            denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            value = np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)
        elif objective == "precision":
            value = np.where(recall >= (min_recall or 0.0) - _EPS, precision, -np.inf)
        elif objective == "recall":
            value = np.where(precision >= (min_precision or 0.0) - _EPS, recall, -np.inf)
        else:
            raise ValueError(f"unknown threshold objective {objective!r}; expected one of {OBJECTIVES}")
    return ps[last], value


def choose_threshold(y_positive: np.ndarray, p: np.ndarray, **objective: Any) -> tuple[float, float]:
    """(threshold, the objective there): the cut of `objective_values` with the best value (the
    highest such cut on a tie), moved halfway down to the next distinct value, so rows between
    the two, unseen here, are not decided by a hair. -inf when no cut meets a floor."""
    cuts, values = objective_values(y_positive, p, **objective)
    best = int(np.argmax(values))
    lower = cuts[best + 1] if best + 1 < len(cuts) else 0.0
    return float((cuts[best] + lower) / 2), float(values[best])


def apply_calibration(proba: np.ndarray, calibrators: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Calibrated class probabilities: a binary task's positive column (column 1) mapped and its
    complement; several classes one-vs-rest, each column mapped and the rows renormalised."""
    if not calibrators:
        return proba
    columns = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    mapped = []
    for column, (kind, params) in zip(columns, calibrators, strict=True):
        p = proba[:, column]
        if kind == "sigmoid":
            mapped.append(expit(params[0] * logit(np.clip(p, _EPS, 1 - _EPS)) + params[1]))
        else:
            mapped.append(np.interp(p, params[0], params[1]))
    if proba.shape[1] == 2:
        return np.column_stack([1 - mapped[0], mapped[0]])
    out = np.column_stack(mapped)
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1), 1 / proba.shape[1])


def _fit_calibrators(kind: str, proba: np.ndarray, y_index: np.ndarray,
                     sample_weight: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    columns = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    out = []
    for column in columns:
        p, target = proba[:, column], (y_index == column).astype(int)
        if kind == "sigmoid":
            x = logit(np.clip(p, _EPS, 1 - _EPS))
            out.append(("sigmoid", _platt(x, target, sample_weight)))
        else:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(p, target, sample_weight=sample_weight)
            out.append(("isotonic", np.vstack([iso.X_thresholds_, iso.y_thresholds_])))
    return out


def _platt(x: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """[a, b] of p' = expit(a * x + b), fitted by Newton's method on the log loss, with Platt's
    smoothed targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2), so separable rows stay finite."""
    w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    positives, negatives = float(w[target == 1].sum()), float(w[target == 0].sum())
    t = np.where(target == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    def loss(ab: np.ndarray) -> float:
        z = ab[0] * x + ab[1]
        return float(w @ (np.logaddexp(0, z) - t * z))

    ab = np.array([1.0, 0.0])
    current = loss(ab)
    for _ in range(100):
        q = expit(ab[0] * x + ab[1])
        r, h = w * (q - t), w * q * (1 - q) + 1e-12
        gradient = np.array([r @ x, r.sum()])
        hessian = np.array([[h @ (x * x), h @ x], [h @ x, h.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-8 and loss(ab - size * step) > current:  # damped: the loss never rises
            size /= 2
        if size <= 1e-8:
            break
        ab = ab - size * step
        previous, current = current, loss(ab)
        if previous - current < 1e-12 * max(1.0, abs(current)):
            break
    return ab


def _cv_log_loss(kind: str, proba: np.ndarray, y_index: np.ndarray,
                 folds: list[tuple[np.ndarray, np.ndarray]], sample_weight: np.ndarray | None) -> float:
    """The log loss of `kind`'s calibration of `proba`, each fold calibrated by the other folds."""
    if kind == "none":
        return float(log_loss(y_index, proba, labels=range(proba.shape[1]), sample_weight=sample_weight))
    calibrated = np.zeros_like(proba)
    for train, test in folds:
        w = None if sample_weight is None else sample_weight[train]
        fitted = _fit_calibrators(kind, proba[train], y_index[train], w)
        calibrated[test] = apply_calibration(proba[test], fitted)
    return float(log_loss(y_index, np.clip(calibrated, _EPS, 1), labels=range(proba.shape[1]),
                          sample_weight=sample_weight))


class DecisionModel(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier with calibrated probabilities and, for two classes, a chosen threshold.

    Parameters
    ----------
    estimator : classifier with predict_proba
    calibration : {"none", "auto", "sigmoid", "isotonic"}
        sigmoid: Platt scaling of the logit; isotonic: a monotone step map; auto: the one of them
        (isotonic only from `ISOTONIC_ROWS` rows) whose cross-validated log loss on the
        out-of-fold predictions is lowest, when it beats the uncalibrated log loss by
        `AUTO_GAIN`, else none.
    objective : {"f1", "balanced_accuracy", "accuracy", "mcc", "precision", "recall"} or None
        Two classes only: choose the threshold maximising it on the out-of-fold predictions
        (None with `costs` None: the threshold is 0.5, as argmax).
    min_recall, min_precision : float or None
        The floor of the other side for `precision` / `recall`.
    costs : 2x2 nested sequence or None
        The cost of [true negative, true positive] rows predicted [negative, positive]; the
        threshold minimises the total cost (instead of an objective).
    pos_label : label or None
        The positive class (default: the second of the sorted classes).
    folds : int
        Stratified folds of the out-of-fold predictions (fewer when a class has fewer rows).
    random_state : int
    """

    def __init__(self, estimator: Any, calibration: str = "none", objective: str | None = None,
                 min_recall: float | None = None, min_precision: float | None = None, costs: Any = None,
                 pos_label: Any = None, folds: int = 5, random_state: int = 0) -> None:
        self.estimator = estimator
        self.calibration = calibration
        self.objective = objective
        self.min_recall = min_recall
        self.min_precision = min_precision
        self.costs = costs
        self.pos_label = pos_label
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DecisionModel:
        """Out-of-fold probabilities, then `calibration_` / `calibrators_`, `threshold_` (None: argmax)
        and `log_loss_` (cross-validated, per method tried), then the model on all rows (`estimator_`)."""
        from looml.learn.rows import TrainingRows, takes_sample_weight

        # X goes to the model as it comes (a vote's members read the coercer's DataFrame): the
        # model checks it; y is checked here.
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        if len(y) == 0:
            raise ValueError("no rows to fit: y is empty")
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"calibration and a threshold need two classes or more; y has 1 class "
                             f"({self.classes_[0]!r})")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        fit_params = {"sample_weight": weights} if weights is not None and takes_sample_weight(
            self.estimator) else {}
        self.calibration_, self.calibrators_, self.threshold_, self.log_loss_ = "none", [], None, {}
        self.threshold_score_ = None
        wants_threshold = len(self.classes_) == 2 and (self.objective is not None or self.costs is not None)
        smallest = int(np.bincount(y_index).min())
        folds = min(self.folds, smallest)
        if (self.calibration != "none" or wants_threshold) and folds >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                proba = cross_val_predict(clone(self.estimator), X, y, cv=splitter, method="predict_proba",
                                          params=fit_params)
            self._calibrate(proba, y_index, weights, list(splitter.split(np.zeros(len(y)), y_index)))
            proba = apply_calibration(proba, self.calibrators_)
            if wants_threshold:
                pos = self._positive()
                self.threshold_, self.threshold_score_ = choose_threshold(
                    y_index == pos, proba[:, pos], objective=self.objective, min_recall=self.min_recall,
                    min_precision=self.min_precision, costs=self.costs, sample_weight=weights)
                if not np.isfinite(self.threshold_score_):  # no cut keeps the floor: argmax, as without
                    self.threshold_, self.threshold_score_ = None, None
        model = clone(self.estimator).fit(X, y, **fit_params)
        self.estimator_ = model.estimator_ if isinstance(model, TrainingRows) else model
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
        return self

    def _calibrate(self, proba: np.ndarray, y_index: np.ndarray, weights: np.ndarray | None,
                   folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if self.calibration == "none":
            return
        tried = (["sigmoid", "isotonic"] if len(y_index) >= ISOTONIC_ROWS else ["sigmoid"]) \
            if self.calibration == "auto" else [self.calibration]
        self.log_loss_ = {k: round(_cv_log_loss(k, proba, y_index, folds, weights), 6)
                          for k in ["none", *tried]}
        chosen = min(tried, key=lambda k: self.log_loss_[k])
        if self.calibration == "auto" and self.log_loss_[chosen] > self.log_loss_["none"] * (1 - AUTO_GAIN):
            return
        self.calibration_ = chosen
        self.calibrators_ = _fit_calibrators(chosen, proba, y_index, weights)

    def _positive(self) -> int:
        if self.pos_label is None:
            return 1
        label = str(self.pos_label)
        found = [i for i, c in enumerate(self.classes_) if c == self.pos_label or str(c) == label]
        return found[0] if found else 1

    def predict_proba(self, X: Any) -> np.ndarray:
        """The model's class probabilities, calibrated."""
        check_is_fitted(self, "estimator_")
        return apply_calibration(self.estimator_.predict_proba(X), self.calibrators_)

    def predict(self, X: Any) -> np.ndarray:
        """The positive class where its probability is at least `threshold_`, else the other;
        the most probable class without a threshold."""
        return decide(self.predict_proba(X), self.classes_, self.threshold_, self._positive())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags


def decide(proba: np.ndarray, classes: np.ndarray, threshold: float | None, positive: int = 1) -> np.ndarray:
    """Labels from probabilities: a binary threshold on the positive column, else argmax."""
    if threshold is None or proba.shape[1] != 2:
        return classes[np.argmax(proba, axis=1)]
    return np.where(proba[:, positive] >= threshold, classes[positive], classes[1 - positive])


def threshold_of(pipeline: Any) -> tuple[float | None, int]:
    """(threshold, positive column) of a fitted pipeline: (None, 1) without a chosen threshold."""
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if isinstance(model, DecisionModel) and getattr(model, "threshold_", None) is not None:
        return model.threshold_, model._positive()
    return None, 1


def decision_of(pipeline: Any) -> dict[str, Any] | None:
    """The fitted pipeline's decision (None when its model step is no `DecisionModel`):
    threshold (None: argmax), the positive class, objective or costs, calibration and its
    cross-validated log losses."""
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if not isinstance(model, DecisionModel) or not hasattr(model, "estimator_"):
        return None
    positive = model._positive()
    return {"threshold": model.threshold_, "positive_class": _plain(model.classes_[positive]),
            "positive_index": positive,
            "objective": ("costs" if model.costs is not None else model.objective),
            "objective_value": model.threshold_score_, "costs": model.costs,
            "min_recall": model.min_recall, "min_precision": model.min_precision,
            "calibration": model.calibration_, "calibration_asked": model.calibration,
            "log_loss": dict(model.log_loss_)}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
