"""Custom preprocessing transformers: outlier clipping, derived columns, free text, cyclic dates.

Each keeps the scikit-learn estimator contract (parameters stored as given, learned state in
`name_`, `get_feature_names_out`) and is checked with `parametrize_with_checks`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from looml.learn.expressions import parse

__all__ = ["PERIODS", "CardinalitySelector", "CyclicParts", "DerivedColumns", "OutlierClipper", "TextTfidf"]

_DEFAULT_THRESHOLDS = {"iqr": 1.5, "zscore": 3.0}
_ACCESSORS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # pandas 3's names


def date_part(stamps: pd.Series, part: str) -> np.ndarray:
    """One part (year, month, day, dayofweek, dayofyear, hour, minute) of datetimes as floats; NaT: NaN."""
    return getattr(stamps.dt, _ACCESSORS.get(part, part)).astype("float64").to_numpy()


PERIODS = {"month": 12.0, "dayofweek": 7.0, "dayofyear": 365.25, "hour": 24.0, "minute": 60.0}


class OutlierClipper(TransformerMixin, BaseEstimator):
    """Clip each column to bounds learned from the training rows; NaN stays NaN.

    Parameters
    ----------
    method : {"iqr", "zscore"}
        iqr: [q1 - t * IQR, q3 + t * IQR]; zscore: [mean - t * std, mean + t * std].
    threshold : float or None
        The multiplier t; None means 1.5 for iqr and 3.0 for zscore.
    """

    def __init__(self, method: str = "iqr", threshold: float | None = None) -> None:
        self.method = method
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        """Learn `lower_` and `upper_` per column from the non-missing values."""
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64")
        if self.method not in _DEFAULT_THRESHOLDS:
            raise ValueError(f"method must be 'iqr' or 'zscore'; got {self.method!r}")
        t = _DEFAULT_THRESHOLDS[self.method] if self.threshold is None else float(self.threshold)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: bounds are NaN
            if self.method == "iqr":
                q1, q3 = np.nanpercentile(X, [25, 75], axis=0)
                lower, upper = q1 - t * (q3 - q1), q3 + t * (q3 - q1)
            else:
                mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
                lower, upper = mean - t * std, mean + t * std
        self.lower_ = np.where(np.isnan(lower), -np.inf, lower)  # an all-missing column is not clipped
        self.upper_ = np.where(np.isnan(upper), np.inf, upper)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The values clipped to [lower_, upper_]."""
        check_is_fitted(self, "lower_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64", reset=False)
        return np.clip(X, self.lower_, self.upper_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names: clipping keeps the columns."""
        check_is_fitted(self, "lower_")
        return _names_in(self, input_features)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class DerivedColumns(TransformerMixin, BaseEstimator):
    """Append columns computed from expressions of the restricted language (`looml.learn.expressions`).

    Parameters
    ----------
    expressions : tuple of (name, expression) pairs
        Evaluated in order over the float values of the columns they name; a later one may use
        an earlier one's name. An unnamed array's columns are called x0, x1, ...
    """

    def __init__(self, expressions: tuple[tuple[str, str], ...] = ()) -> None:
        self.expressions = expressions

    def fit(self, X: Any, y: Any = None) -> DerivedColumns:
        """Check that every referenced column exists (learned state: `input_columns_`)."""
        frame = _named_frame(X)
        if frame.shape[0] == 0:
            raise ValueError(f"DerivedColumns needs at least one row; got shape {frame.shape}")
        known = set(frame.columns)
        for name, text in self.expressions:
            missing = [c for c in parse(text).columns if c not in known]
            if missing:
                raise ValueError(f"derived column {name!r} reads unknown column(s) {missing}")
            known.add(name)
        _derive(frame, self.expressions)  # values that are not numbers fail here, not when serving
        self.input_columns_ = list(frame.columns)
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        """The input frame with the derived columns appended (float64)."""
        check_is_fitted(self, "input_columns_")
        frame = _named_frame(X)
        if frame.shape[1] != self.n_features_in_ and not isinstance(X, pd.DataFrame):
            raise ValueError(f"X has {frame.shape[1]} features, but DerivedColumns is expecting "
                             f"{self.n_features_in_} features as input")
        out = frame[self.input_columns_].copy()
        for name, column in _derive(out, self.expressions).items():
            out[name] = column
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input columns, then the derived names."""
        check_is_fitted(self, "input_columns_")
        return np.asarray([*map(str, self.input_columns_), *(n for n, _ in self.expressions)], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # returns a DataFrame
        return tags


class TextTfidf(TransformerMixin, BaseEstimator):
    """One TF-IDF of word n-grams per free-text column; a missing text is an empty one.

    A column's term weights are projected on their first `components` singular directions
    (latent semantic analysis) when it has more terms than that: every model takes a dense
    matrix, and two thousand term columns of 15,000 rows made the forests and boosted trees
    take many minutes for what a few dozen directions carry.

    Parameters
    ----------
    max_features : int
        At most this many terms per column.
    ngram_max : int
        Longest word n-gram.
    min_df : int
        Fewest training rows a term must appear in. A column with no term that frequent adds
        no output columns.
    components : int
        At most this many output columns per text column (0: the term weights themselves).
    random_state : int
        Seed of the randomized singular value decomposition.
    """

    def __init__(self, max_features: int = 2000, ngram_max: int = 2, min_df: int = 2,
                 components: int = 50, random_state: int = 0) -> None:
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.components = components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> TextTfidf:
        """Fit one vectorizer per column (`vectorizers_`; None where no term is left) and, for
        columns with more terms than `components`, its projection (`reducers_`, else None)."""
        frame = _frame(X)
        if frame.shape[0] == 0:
            raise ValueError(f"TextTfidf needs at least one row; got shape {frame.shape}")
        texts = [_texts(frame.iloc[:, i]) for i in range(frame.shape[1])]
        self.vectorizers_ = [self._fit_column(t) for t in texts]
        self.reducers_ = [self._fit_reducer(v, t) for v, t in zip(self.vectorizers_, texts, strict=True)]
        self.columns_ = [str(c) for c in frame.columns]
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def _fit_column(self, texts: list[str]) -> TfidfVectorizer | None:
        vectorizer = TfidfVectorizer(max_features=self.max_features, ngram_range=(1, self.ngram_max),
                                     min_df=min(self.min_df, len(texts)), dtype=np.float32,
                                     sublinear_tf=True)
        try:
            return vectorizer.fit(texts)
        except ValueError:  # no term left after min_df / only stop words or punctuation
            return None

    def _fit_reducer(self, vectorizer: TfidfVectorizer | None, texts: list[str]) -> TruncatedSVD | None:
        if vectorizer is None or not self.components or len(vectorizer.vocabulary_) <= self.components:
            return None
        weights = vectorizer.transform(texts)
        components = min(self.components, weights.shape[0] - 1)
        if components < 1:
            return None
        return TruncatedSVD(n_components=components, random_state=self.random_state).fit(weights)

    def transform(self, X: Any) -> np.ndarray:
        """A dense float32 array: each column's term weights (or their projection), side by side."""
        check_is_fitted(self, "vectorizers_")
        frame = _frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but TextTfidf is expecting "
                             f"{self.n_features_in_} features as input")
        blocks = []
        for i, (vectorizer, reducer) in enumerate(zip(self.vectorizers_, self.reducers_, strict=True)):
            if vectorizer is None:
                continue
            weights = vectorizer.transform(_texts(frame.iloc[:, i]))
            blocks.append(weights.toarray() if reducer is None
                          else reducer.transform(weights).astype(np.float32))
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0), dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """`column_term` for each term column, `column_lsaK` for each projected one."""
        check_is_fitted(self, "vectorizers_")
        names = []
        for column, vectorizer, reducer in zip(self.columns_, self.vectorizers_, self.reducers_, strict=True):
            if vectorizer is None:
                continue
            names += ([f"{column}_{t}" for t in vectorizer.get_feature_names_out()] if reducer is None
                      else [f"{column}_lsa{k}" for k in range(reducer.n_components)])
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class CyclicParts(TransformerMixin, BaseEstimator):
    """sin / cos of the cyclic calendar parts of datetime columns; NaT gives NaN.

    Parameters
    ----------
    parts : tuple of str
        Any of month, dayofweek, dayofyear, hour, minute.
    """

    def __init__(self, parts: tuple[str, ...] = ("month", "dayofweek", "hour")) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> CyclicParts:
        """Remember the input columns."""
        frame = _frame(X)
        if frame.shape[0] == 0:
            raise ValueError(f"CyclicParts needs at least one row; got shape {frame.shape}")
        unknown = [p for p in self.parts if p not in PERIODS]
        if unknown:
            raise ValueError(f"parts must be among {sorted(PERIODS)}; got {unknown}")
        self.columns_ = [str(c) for c in frame.columns]
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Per column and part: sin and cos of 2 pi part / period."""
        check_is_fitted(self, "columns_")
        frame = _frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but CyclicParts is expecting "
                             f"{self.n_features_in_} features as input")
        blocks = []
        for i in range(frame.shape[1]):
            stamps = pd.to_datetime(frame.iloc[:, i], errors="coerce")
            for part in self.parts:
                angle = 2 * np.pi * date_part(stamps, part) / PERIODS[part]
                blocks += [np.sin(angle), np.cos(angle)]
        return np.column_stack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """`column_part_sin` / `column_part_cos`."""
        check_is_fitted(self, "columns_")
        return np.asarray([f"{c}_{p}_{f}" for c in self.columns_ for p in self.parts for f in ("sin", "cos")],
                          dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


class CardinalitySelector:
    """A ColumnTransformer column selector: the listed columns with few (or many) distinct values.

    Evaluated on the rows the ColumnTransformer is fitted on (a training fold), so a column's
    encoding is decided without looking at validation rows or labels.

    Parameters
    ----------
    columns : list of str
    max_distinct : int
        The boundary: at most this many distinct non-missing values is "few".
    many : bool
        Select the columns with more than `max_distinct` values instead.
    """

    def __init__(self, columns: list[str], max_distinct: int, many: bool = False) -> None:
        self.columns = columns
        self.max_distinct = max_distinct
        self.many = many

    def __call__(self, X: pd.DataFrame) -> list[str]:
        """The selected column names, in the listed order."""
        return [c for c in self.columns if (X[c].nunique(dropna=True) > self.max_distinct) == self.many]

    def __repr__(self) -> str:
        return f"CardinalitySelector({self.columns!r}, max_distinct={self.max_distinct}, many={self.many})"


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False))


def _named_frame(X: Any) -> pd.DataFrame:
    """A DataFrame as it is; an array with its columns named x0, x1, ..."""
    if isinstance(X, pd.DataFrame):
        return X
    frame = _frame(X)
    frame.columns = [f"x{i}" for i in range(frame.shape[1])]
    return frame


def _derive(frame: pd.DataFrame, expressions: tuple[tuple[str, str], ...]) -> dict[str, np.ndarray]:
    """Each derived column's values; a referenced column must hold numbers (or gaps)."""
    values: dict[str, np.ndarray] = {}
    for name, text in expressions:
        expression = parse(text)
        inputs = {c: values[c] if c in values else frame[c].to_numpy(dtype="float64", na_value=np.nan)
                  for c in expression.columns}
        values[name] = expression.evaluate(inputs, len(frame))
    return values


def _texts(values: pd.Series) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _names_in(estimator: Any, input_features: Any) -> np.ndarray:
    if input_features is not None:
        return np.asarray(input_features, dtype=object)
    if hasattr(estimator, "feature_names_in_"):
        return np.asarray(estimator.feature_names_in_, dtype=object)
    return np.asarray([f"x{i}" for i in range(estimator.n_features_in_)], dtype=object)
